"""The run contract: what the server tells a run and what a run sends back.

One definition for both sides. The API's response models subclass these (adding how they are
built from database rows), and the runtime parses the same JSON into them, so a field renamed
on one side is renamed on the other. This module imports pydantic only: a run loads it without
the server's dependencies.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from annotated_types import Interval
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MAX_DB_INT",
    "AnnotationBatch",
    "AnnotationItem",
    "AnnotationsAdded",
    "Asset",
    "Confusion",
    "DbInt",
    "Deployment",
    "Evaluation",
    "EvaluationMetrics",
    "Label",
    "LabelCount",
    "LabelMetrics",
    "Limits",
    "ModelVersion",
    "Prediction",
    "ProcessingInfo",
    "RunContext",
    "Shape",
    "ShapeOut",
    "StoredAnnotation",
    "Version",
    "VersionStats",
    "Window",
]

MAX_DB_INT = 2**63 - 1
# Ids, cursors and counts that reach the database: a signed 64-bit column on SQLite and
# PostgreSQL alike, so anything larger is a 422 at the edge rather than an overflow there.
DbInt = Annotated[int, Interval(ge=0, le=MAX_DB_INT)]

# Published in every run context; `ProcessingContext` splits its requests to fit.
MAX_BATCH_IMAGES = 64
MAX_ANNOTATION_ITEMS = 1000
MAX_UPLOAD_FILES = 1000  # Starlette's multipart default


class Limits(BaseModel):
    """What one request of a run may carry; larger work is split by the SDK, never truncated."""

    max_batch_images: int = Field(MAX_BATCH_IMAGES, description="images per batch download")
    max_annotation_items: int = Field(
        MAX_ANNOTATION_ITEMS, description="assets per annotation batch"
    )
    max_upload_files: int = Field(MAX_UPLOAD_FILES, description="files per upload request")
    max_request_bytes: int = Field(2048 * 1024**2, description="bytes per request body")


class Version(BaseModel):
    id: int
    dataset_id: int
    name: str
    description: str
    parent_version_id: int | None
    produced_by_job_id: int | None
    created_at: datetime
    updated_at: datetime


class Label(BaseModel):
    id: int
    version_id: int
    name: str
    color: str
    position: int
    external_id: int | None = Field(None, description="its id in an imported file (COCO)")
    keypoints: dict[str, Any] | None = Field(
        None, description="keypoint schema: {names: [...], skeleton: [[1, 2], ...]}"
    )


class LabelCount(BaseModel):
    label_id: int
    name: str
    color: str
    shapes: int


class VersionStats(BaseModel):
    assets: int
    annotated_assets: int
    shapes: int
    labels: list[LabelCount]


class Asset(BaseModel):
    id: int
    version_id: int
    filename: str
    mime: str
    width: int
    height: int
    blob_sha256: str
    tags: list[str]
    metadata: dict[str, Any]
    created_at: datetime


class Shape(BaseModel):
    """A shape as a writer gives it: geometry in pixels of the asset's image, label by name."""

    model_config = ConfigDict(allow_inf_nan=False)

    kind: str = Field(description="rectangle | polygon | classification | point | mask")
    label: str = Field(description="label name in the asset's version")
    bbox: list[float] | None = Field(
        None, description="[x, y, w, h] in pixels, for rectangles and masks"
    )
    points: list[list[float]] | None = Field(None, description="[[x, y], …] for polygons, points")
    score: float | None = None
    rings: list[list[list[float]]] | None = Field(
        None, description="a polygon's parts when it has several (the first is `points`)"
    )
    mask: dict[str, Any] | None = Field(
        None, description="a mask's COCO RLE: {size: [height, width], counts}"
    )
    keypoints: list[list[float]] | None = Field(
        None, description="[[x, y, v], …], v: 0 not labelled, 1 hidden, 2 visible"
    )
    attributes: dict[str, Any] | None = Field(
        None, description="flags and values: VOC difficult/truncated/occluded/pose, iscrowd…"
    )


class ShapeOut(BaseModel):
    """A stored shape: a `Shape` with its id and label id."""

    id: int
    kind: str
    label: str
    label_id: int
    bbox: list[float] | None
    points: list[list[float]] | None
    score: float | None
    rings: list[list[list[float]]] | None = None
    mask: dict[str, Any] | None = None
    keypoints: list[list[float]] | None = None
    attributes: dict[str, Any] | None = None


class StoredAnnotation(BaseModel):
    """One author's shapes on one asset."""

    id: int
    asset_id: int
    author_kind: str
    author_id: int
    status: str
    created_at: datetime
    updated_at: datetime
    shapes: list[ShapeOut]


class AnnotationItem(BaseModel):
    asset_id: DbInt
    shapes: list[Shape]


class AnnotationBatch(BaseModel):
    """Shapes on many assets, written by a run in one transaction (all or nothing).

    `done` lists assets the run finished without a shape to write, so that a resumed re-run
    skips them too."""

    items: list[AnnotationItem]
    done: list[DbInt] = Field(default_factory=list)


class AnnotationsAdded(BaseModel):
    shapes_added: int


class ModelVersion(BaseModel):
    id: int
    model_id: int
    model: str
    name: str
    format: str
    family: str
    labels: list[str]
    input_size: list[int] = Field(description="[height, width]")
    weights_sha256: str
    metadata: dict[str, Any]
    produced_by_job_id: int | None
    created_at: datetime


class Deployment(BaseModel):
    """A served model version, as a run on it sees it (its current revision)."""

    id: int
    name: str
    status: str
    revision: int
    model_version_id: int
    settings: dict[str, Any]


class Window(BaseModel):
    """The stretch of time a run on a deployment reads: predictions made in [start, end)."""

    start: datetime | None
    end: datetime


class Prediction(BaseModel):
    """One answered predict request of a deployment, as a run reads it."""

    id: int
    created_at: datetime
    model_version_id: int
    revision: int
    queue_ms: float
    inference_ms: float
    total_ms: float
    width: int
    height: int
    shapes: list[dict[str, Any]] = Field(
        description='rectangles {"kind", "label", "bbox": [x, y, w, h], "score"}'
    )
    image_sha256: str | None = Field(description="set when the image was sampled and stored")
    review_status: str


class ProcessingInfo(BaseModel):
    id: int
    name: str
    type: str
    revision: int
    source: dict[str, Any]


class RunContext(BaseModel):
    """What the runtime needs to execute a run, answered by `GET /runs/{id}/context`."""

    run_id: int
    job_id: int
    attempt: int
    processing: ProcessingInfo
    parameters: dict[str, Any]
    target_version: Version | None = Field(
        description="the dataset version it reads; None for a job on a model without samples"
    )
    model_version: ModelVersion | None
    deployment: Deployment | None = Field(None, description="the deployment a job on one reads")
    window: Window | None = Field(None, description="which of its predictions it reads")
    limits: Limits = Field(default_factory=Limits)
    resume: bool = Field(
        False, description="skip the assets the job's earlier runs finished (a resumed re-run)"
    )


class LabelMetrics(BaseModel):
    """One label's figures in an evaluation (None where the label has no ground truth)."""

    label: str
    ap: float | None = Field(description="COCO AP averaged over IoU 0.50:0.95")
    ap50: float | None = Field(description="AP at IoU 0.50")
    recall: float | None = Field(description="recall at IoU 0.50, up to 100 detections per image")
    ground_truth: int
    predictions: int


class Confusion(BaseModel):
    """Detections matched to ground truth at IoU >= 0.5 whatever their labels, one detection
    per truth, best score first: `matrix[t][p]` counts truths of `labels[t]` detected as
    `labels[p]`; the last row (`background`) counts detections of nothing, the last column
    (`missed`) truths nothing detected."""

    labels: list[str]
    confidence: float = Field(description="detections below this score are left out")
    matrix: list[list[int]]


class EvaluationMetrics(BaseModel):
    """What a model-evaluation run measured (COCO's box metrics, as pycocotools' COCOeval)."""

    map: float = Field(description="COCO mAP@[.5:.95]")
    map50: float = Field(description="mAP at IoU 0.50")
    recall: float = Field(description="mean recall at IoU 0.50:0.95, 100 detections per image")
    images: int
    ground_truth: int
    predictions: int
    labels: list[LabelMetrics]
    pr_curves: dict[str, list[float]] = Field(
        default_factory=dict,
        description="per label, precision at recall 0, 0.01, …, 1 (IoU 0.50, COCO's "
        "interpolation); labels without ground truth are left out",
    )
    confusion: Confusion | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)


class Evaluation(BaseModel):
    """A model version measured on a dataset version, by a model-evaluation run."""

    id: int
    model_version_id: int
    dataset_version_id: int
    job_id: int | None
    run_id: int | None
    metrics: EvaluationMetrics
    created_at: datetime
