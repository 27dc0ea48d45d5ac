"""Request and response bodies at the HTTP edge, in families: `XCreate`, `XUpdate`, `XPublic`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from darkroom.db.models import Annotation, Asset, Shape
from darkroom.defaults import RUN_TIMEOUT_S
from darkroom.runtime import contract
from darkroom.runtime.contract import MAX_DB_INT as MAX_DB_INT
from darkroom.runtime.contract import DbInt as DbInt
from darkroom.sources import source_doc


def _doc_of_source(value: Any) -> Any:
    return value if isinstance(value, dict) else source_doc(value)


# A revision's typed source, answered as the JSON object it was posted as.
SourceDoc = Annotated[dict[str, Any], BeforeValidator(_doc_of_source)]

T = TypeVar("T")


class Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next: int | None = Field(description="pass as ?after= to get the next page; null at the end")


class Health(BaseModel):
    status: str
    version: str


class WorkerPublic(Public):
    id: str
    hostname: str
    executor: str
    slots: int
    gpus: int
    gpus_free: int
    started_at: datetime
    seen_at: datetime


class DatasetCreate(BaseModel):
    name: str
    description: str = ""


class DatasetUpdate(BaseModel):
    name: str | None = None
    description: str | None = None


class DatasetPublic(Public):
    id: int
    name: str
    description: str
    created_at: datetime
    updated_at: datetime


class VersionCreate(BaseModel):
    name: str
    description: str = ""
    parent_version_id: DbInt | None = None


class VersionUpdate(BaseModel):
    name: str | None = None
    description: str | None = None


class VersionPublic(contract.Version, Public):
    pass


class LabelCountPublic(contract.LabelCount, Public):
    pass


class VersionStatsPublic(contract.VersionStats, Public):
    labels: list[LabelCountPublic]


class LabelCreate(BaseModel):
    name: str
    color: str | None = Field(None, description="#rrggbb; picked from a palette when omitted")


class LabelUpdate(BaseModel):
    name: str | None = None
    color: str | None = None
    position: DbInt | None = None


class LabelPublic(contract.Label, Public):
    pass


class AssetPublic(contract.Asset):
    @classmethod
    def of(cls, asset: Asset) -> AssetPublic:
        return cls(
            id=asset.id,
            version_id=asset.version_id,
            filename=asset.filename,
            mime=asset.mime,
            width=asset.width,
            height=asset.height,
            blob_sha256=asset.blob_sha256,
            tags=asset.tags,
            metadata=asset.meta,
            created_at=asset.created_at,
        )


class AssetUpdate(BaseModel):
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None


class AssetsCreated(BaseModel):
    items: list[AssetPublic]


class AnnotationWrite(BaseModel):
    shapes: list[contract.Shape]


class ShapePublic(contract.ShapeOut):
    @classmethod
    def of(cls, shape: Shape, label_names: dict[int, str]) -> ShapePublic:
        boxed = shape.kind in ("rectangle", "mask")
        return cls(
            id=shape.id,
            kind=shape.kind,
            label=label_names.get(shape.label_id, "?"),
            label_id=shape.label_id,
            bbox=[shape.x, shape.y, shape.w, shape.h] if boxed else None,  # type: ignore[list-item]
            points=shape.points,
            score=shape.score,
            rings=shape.rings,
            mask=shape.mask,
            keypoints=shape.keypoints,
            attributes=shape.attributes,
        )


class AnnotationPublic(contract.StoredAnnotation):
    shapes: list[ShapePublic]

    @classmethod
    def of(cls, ann: Annotation, label_names: dict[int, str]) -> AnnotationPublic:
        return cls(
            id=ann.id,
            asset_id=ann.asset_id,
            author_kind=ann.author_kind,
            author_id=ann.author_id,
            status=ann.status,
            created_at=ann.created_at,
            updated_at=ann.updated_at,
            shapes=[ShapePublic.of(s, label_names) for s in ann.shapes],
        )


class AnnotationsPublic(BaseModel):
    items: list[AnnotationPublic]


class SkippedPublic(Public):
    item: str
    reason: str


class ImportReportPublic(Public):
    format: str
    on_existing: str
    images_added: int
    images_matched: int
    shapes_added: int
    shapes_replaced: int
    labels_created: list[str]
    skipped: list[SkippedPublic]
    skipped_count: int


# -- processings, jobs, runs ------------------------------------------------------------------

EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


class ProcessingCreate(BaseModel):
    name: str
    type: str = Field(description="pre_annotation, data_augmentation, dataset_version_creation, "
                      "auto_tagging, model_conversion, model_evaluation or custom")  # fmt: skip
    target: str = "dataset_version"
    description: str = ""
    needs_model: bool = False
    source: dict[str, Any] = Field(
        description='{"kind": "inline", "code": "<python>", "entrypoint": "run"}'
    )
    parameters_schema: dict[str, Any] = Field(default_factory=lambda: dict(EMPTY_SCHEMA))
    timeout_s: int = RUN_TIMEOUT_S
    resources: dict[str, Any] = Field(default_factory=dict)


class ProcessingUpdate(BaseModel):
    description: str | None = None
    needs_model: bool | None = None
    source: dict[str, Any] | None = None
    parameters_schema: dict[str, Any] | None = None
    timeout_s: int | None = None
    resources: dict[str, Any] | None = None


class RevisionPublic(Public):
    id: int
    processing_id: int
    number: int
    source: SourceDoc
    parameters_schema: dict[str, Any]
    timeout_s: int
    resources: dict[str, Any]
    is_dev: bool = Field(description="a development revision (run-local); launches skip it")
    created_at: datetime


class ProcessingPublic(BaseModel):
    id: int
    name: str
    type: str
    target: str
    description: str
    is_public: bool
    builtin: bool
    needs_model: bool
    created_at: datetime
    updated_at: datetime
    latest_revision: RevisionPublic


class PushResult(BaseModel):
    processing: ProcessingPublic
    revision: RevisionPublic
    created: bool = Field(description="false: the same bundle was pushed before")


class ProcessingRef(BaseModel):
    id: int
    name: str
    type: str


class Progress(BaseModel):
    done: int
    total: int | None


class RunPublic(BaseModel):
    id: int
    job_id: int
    attempt: int
    revision: int = Field(description="the processing revision number this run executed")
    revision_id: int
    status: str
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    exit_code: int | None
    error_summary: str | None
    failure_reason: str | None
    progress: Progress
    heartbeat_at: datetime | None
    worker_id: str | None
    cancel_requested: bool
    resume: bool = Field(description="skips the assets the job's earlier runs finished")
    parameters: dict[str, Any] | None = Field(
        None, description="what this run ran with (a re-run may change the job's)"
    )

    @classmethod
    def of(cls, run: Any) -> RunPublic:
        return cls(
            id=run.id, job_id=run.job_id, attempt=run.attempt, revision=run.revision.number,
            revision_id=run.revision_id, status=run.status, queued_at=run.queued_at,
            started_at=run.started_at, finished_at=run.finished_at, duration_s=run.duration_s,
            exit_code=run.exit_code, error_summary=run.error_summary,
            failure_reason=run.failure_reason,
            progress=Progress(done=run.progress_done, total=run.progress_total),
            heartbeat_at=run.heartbeat_at, worker_id=run.worker_id,
            cancel_requested=run.cancel_requested_at is not None, resume=run.resume,
            parameters=run.parameters,
        )  # fmt: skip


class JobCreate(BaseModel):
    processing: DbInt | str = Field(description="processing id or name")
    target_version_id: DbInt | None = Field(
        default=None,
        description="the dataset version it runs on; for a processing on models (target "
        "model_version), its sample images, if any",
    )
    model_version_id: DbInt | None = Field(
        default=None, description="the model it runs; the target of a processing on models"
    )
    parameters: dict[str, Any] | None = None
    revision: DbInt | None = Field(
        default=None, description="a revision number; default: the newest regular revision"
    )
    target_deployment_id: DbInt | str | None = Field(
        default=None, description="the deployment a processing on deployments reads (id or name)"
    )
    window_start: AwareDatetime | None = Field(
        default=None, description="on a deployment: the predictions made from then"
    )
    window_end: AwareDatetime | None = Field(
        default=None, description="on a deployment: ... until then (default: now)"
    )


class RerunRequest(BaseModel):
    parameters: dict[str, Any] | None = None
    resume: bool = Field(
        False, description="skip the assets the job's earlier runs finished (after a failure)"
    )


class JobPublic(BaseModel):
    id: int
    number: int | None = Field(
        None, description="what pages call it: 1, 2, 3… within its organization; null for a "
        "preview (the id stays its handle in paths)",
    )  # fmt: skip
    processing: ProcessingRef
    target_version_id: int | None
    model_version_id: int | None
    target_deployment_id: int | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    parameters: dict[str, Any]
    created_by: int
    created_at: datetime
    status: str = Field(description="the latest run's status")
    runs: list[RunPublic]
    pipeline_run_id: int | None = Field(None, description="the pipeline run it is a step of")
    pipeline_step: str | None = None
    trigger_id: int | None = Field(None, description="the trigger that launched it")

    @classmethod
    def of(cls, job: Any) -> JobPublic:
        return cls(
            id=job.id,
            number=job.number,
            processing=ProcessingRef(
                id=job.processing.id, name=job.processing.name, type=job.processing.type
            ),
            target_version_id=job.target_version_id,
            model_version_id=job.model_version_id,
            target_deployment_id=job.target_deployment_id,
            window_start=job.window_start,
            window_end=job.window_end,
            parameters=job.parameters,
            created_by=job.created_by,
            created_at=job.created_at,
            status=job.runs[-1].status,
            runs=[RunPublic.of(r) for r in job.runs],
            pipeline_run_id=job.pipeline_run_id,
            pipeline_step=job.pipeline_step,
            trigger_id=job.trigger_id,
        )


class LogLinePublic(Public):
    seq: int
    ts: datetime
    stream: str
    text: str


class OutputLineIn(BaseModel):
    ts: datetime
    stream: Literal["stdout", "stderr", "system"]
    text: str = Field(max_length=100_000)


class RunOutput(BaseModel):
    """Output lines a run's node ships itself (a run on Ray), oldest first."""

    lines: list[OutputLineIn] = Field(max_length=5000)


class ProgressReport(BaseModel):
    done: DbInt
    total: DbInt | None = None


class OutputVersionCreate(BaseModel):
    name: str
    description: str = ""
    copy_input: bool = True
    asset_ids: list[DbInt] | None = Field(
        None, description="with copy_input: copy only these input assets"
    )
    tags: dict[DbInt, list[str]] | None = Field(
        None, description="with copy_input: extra tags of copied assets, by input asset id"
    )


# -- models -----------------------------------------------------------------------------------


class ModelCreate(BaseModel):
    name: str
    description: str = ""


class ModelPublic(Public):
    id: int
    name: str
    description: str
    is_public: bool
    created_at: datetime


class EvaluationPublic(contract.Evaluation, Public):
    pass


class ModelVersionPublic(contract.ModelVersion):
    @classmethod
    def of(cls, v: Any) -> ModelVersionPublic:
        return cls(
            id=v.id, model_id=v.model_id, model=v.model.name, name=v.name, format=v.format,
            family=v.family, labels=v.labels, input_size=[v.input_height, v.input_width],
            weights_sha256=v.weights_sha256, metadata=v.meta,
            produced_by_job_id=v.produced_by_job_id, created_at=v.created_at,
        )  # fmt: skip


# -- deployments -----------------------------------------------------------------------------


class DeploymentCreate(BaseModel):
    name: str
    model_version_id: DbInt
    settings: dict[str, Any] | None = Field(
        None,
        description="confidence_threshold, iou_threshold, max_detections, labels (kept; null: "
        "all), max_batch, max_wait_ms, replicas, sampling_rate (share of images stored), "
        "retention_days (null: forever)",
    )
    description: str = ""


class DeploymentUpdate(BaseModel):
    model_version_id: DbInt | None = Field(None, description="a rollout to this model version")
    settings: dict[str, Any] | None = Field(None, description="settings to change")
    description: str | None = None


class ReplicaPublic(BaseModel):
    revision: int
    pid: int | None
    state: str = Field(description="starting, ready, retiring, restarting or dead")
    restarts: int
    inflight: int


class DeploymentRevisionPublic(BaseModel):
    number: int
    model_version_id: int
    model_version: str = Field(description="model/version names")
    settings: dict[str, Any]
    created_by: int
    created_at: datetime

    @classmethod
    def of(cls, rev: Any) -> DeploymentRevisionPublic:
        mv = rev.model_version
        return cls(number=rev.number, model_version_id=rev.model_version_id,
                   model_version=f"{mv.model.name}/{mv.name}", settings=rev.settings,
                   created_by=rev.created_by, created_at=rev.created_at)  # fmt: skip


class DeploymentPublic(BaseModel):
    id: int
    name: str
    description: str
    status: str = Field(description="starting, serving, stopped or failed")
    status_reason: str | None
    revision: DeploymentRevisionPublic
    model_version_id: int
    settings: dict[str, Any]
    created_by: int
    created_at: datetime
    updated_at: datetime
    replicas: list[ReplicaPublic] = Field(
        default_factory=list, description="the replicas of the server that answered"
    )

    @classmethod
    def of(cls, d: Any, replicas: list[dict[str, Any]] | None = None) -> DeploymentPublic:
        return cls(id=d.id, name=d.name, description=d.description, status=d.status,
                   status_reason=d.status_reason, revision=DeploymentRevisionPublic.of(d.revision),
                   model_version_id=d.revision.model_version_id, settings=d.revision.settings,
                   created_by=d.created_by, created_at=d.created_at, updated_at=d.updated_at,
                   replicas=[ReplicaPublic(**r) for r in replicas or []])  # fmt: skip


class Latency(BaseModel):
    queue: float = Field(description="ms waiting in the replica for its batch")
    inference: float = Field(description="ms of the batch's decoding and inference")
    total: float = Field(description="ms from the request's arrival to its answer")


class PredictionPublic(BaseModel):
    id: int
    deployment_id: int
    model_version_id: int
    revision: int
    created_at: datetime
    latency_ms: Latency
    width: int
    height: int
    shapes: list[dict[str, Any]]
    image_sha256: str | None = Field(description="set when the image was sampled and stored")
    review_status: str

    @classmethod
    def of(cls, p: Any) -> PredictionPublic:
        return cls(id=p.id, deployment_id=p.deployment_id, model_version_id=p.model_version_id,
                   revision=p.revision, created_at=p.created_at,
                   latency_ms=Latency(queue=p.queue_ms, inference=p.inference_ms,
                                      total=p.total_ms),
                   width=p.width, height=p.height, shapes=p.shapes, image_sha256=p.image_sha256,
                   review_status=p.review_status)  # fmt: skip


class DeploymentTokenCreate(BaseModel):
    name: str = ""


class DeploymentTokenPublic(BaseModel):
    id: int
    name: str
    deployment_id: int
    token: str = Field(description="shown once; it may call this deployment's predict only")


class ReviewRequest(BaseModel):
    ids: list[DbInt] = Field(min_length=1, max_length=1000)
    status: Literal["unreviewed", "accepted", "rejected"]


class SendRequest(BaseModel):
    ids: list[DbInt] = Field(min_length=1, max_length=1000)
    version_id: DbInt = Field(description="the dataset version the images and boxes go to")


class MetricsWrite(BaseModel):
    metrics: dict[str, Any] = Field(description="name -> a number, or a JSON structure")


class MetricPointPublic(BaseModel):
    key: str
    value: float
    at: datetime = Field(description="the end of the run's window")
    run_id: int
    job_id: int


class LiveFiguresPublic(BaseModel):
    minutes: int
    requests: int
    per_minute: list[int] = Field(description="requests in each minute, oldest first")
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    per_label: dict[str, int]
    by_model_version: dict[int, int]


# -- pipelines ------------------------------------------------------------------------------------


class PipelineStep(BaseModel):
    name: str = Field(description="lower-case letters, digits, '-' and '_'; unique in the pipeline")
    processing: str | int = Field(description="a processing's name or id, on dataset versions")
    parameters: dict[str, Any] = Field(default_factory=dict)
    model_version_id: DbInt | None = None
    input: str = Field("input", description="'input' (the run's version) or an earlier step")


class PipelineDefinition(BaseModel):
    steps: list[dict[str, Any]] = Field(
        description="the steps, as `PipelineStep`s (checked whole: the error names the step)"
    )


class PipelineCreate(PipelineDefinition):
    name: str
    description: str = ""


class PipelineRevisionPublic(BaseModel):
    number: int
    steps: list[PipelineStep]
    created_at: datetime

    @classmethod
    def of(cls, revision: Any) -> PipelineRevisionPublic:
        steps = [PipelineStep(**{k: v for k, v in s.items() if k in PipelineStep.model_fields})
                 for s in revision.definition["steps"]]  # fmt: skip
        return cls(number=revision.number, steps=steps, created_at=revision.created_at)


class PipelinePublic(BaseModel):
    id: int
    name: str
    description: str
    created_at: datetime
    revision: PipelineRevisionPublic = Field(description="the newest revision")


class PipelineLaunch(BaseModel):
    input_version_id: DbInt
    revision: int | None = Field(None, description="a revision number; the newest by default")


class PipelineStepPublic(BaseModel):
    name: str
    processing: str
    input: str
    status: str = Field(
        description="waiting | pending | running | succeeded | failed | cancelled | blocked"
    )
    job_id: int | None
    run_id: int | None = Field(description="the step job's newest run")
    target_version_id: int | None
    output_version_ids: list[int]


class PipelineRunPublic(BaseModel):
    id: int
    pipeline_id: int
    pipeline: str
    revision: int
    input_version_id: int | None
    status: str = Field(description="derived from the steps: running, succeeded, failed, cancelled")
    created_at: datetime
    cancelled_at: datetime | None
    trigger_id: int | None = Field(None, description="the trigger that launched it")
    steps: list[PipelineStepPublic]

    @classmethod
    def of(cls, run: Any, status: str, steps: list[Any]) -> PipelineRunPublic:
        return cls(
            id=run.id, pipeline_id=run.pipeline_id, pipeline=run.pipeline.name,
            revision=run.revision.number, input_version_id=run.input_version_id, status=status,
            created_at=run.created_at, cancelled_at=run.cancelled_at, trigger_id=run.trigger_id,
            steps=[PipelineStepPublic(
                name=s.name, processing=s.processing, input=s.input, status=s.status,
                job_id=s.job.id if s.job else None, run_id=s.job.runs[-1].id if s.job else None,
                target_version_id=s.job.target_version_id if s.job else None,
                output_version_ids=s.output_version_ids,
            ) for s in steps],
        )  # fmt: skip


# -- triggers -------------------------------------------------------------------------------------


class TriggerCreate(BaseModel):
    name: str
    kind: Literal["assets", "version", "schedule"] = Field(
        description="assets: new assets in version_id (min_assets, or debounce_s after the "
        "first); version: a version a person creates in dataset_id; schedule: cron, on version_id"
    )
    pipeline: str | int | None = Field(None, description="the pipeline it launches, or...")
    processing: str | int | None = Field(None, description="...the processing it launches")
    parameters: dict[str, Any] | None = None
    model_version_id: DbInt | None = None
    version_id: DbInt | None = None
    dataset_id: DbInt | None = None
    min_assets: int = 1
    debounce_s: float = 10.0
    cron: str | None = Field(None, description="five fields, UTC, e.g. '0 3 * * *'")


class TriggerUpdate(BaseModel):
    enabled: bool


class TriggerPublic(Public):
    id: int
    name: str
    kind: str
    pipeline_id: int | None
    processing_id: int | None
    parameters: dict[str, Any]
    model_version_id: int | None
    version_id: int | None
    dataset_id: int | None
    min_assets: int
    debounce_s: float
    cron: str | None
    next_fire_at: datetime | None
    enabled: bool
    fired: int = Field(description="how many times it fired")
    last_fired_at: datetime | None
    last_error: str | None = Field(description="why its last firing could not launch")
    created_at: datetime


# -- webhooks -------------------------------------------------------------------------------------


class WebhookCreate(BaseModel):
    url: str = Field(max_length=2000)
    events: list[str] | None = Field(
        None, description="among run.ended, job.ended, pipeline_run.ended (default: all)"
    )
    secret: str | None = Field(None, description="16-200 characters; generated when absent")


class WebhookUpdate(BaseModel):
    enabled: bool | None = None
    url: str | None = Field(None, max_length=2000)
    events: list[str] | None = None


class WebhookPublic(Public):
    id: int
    url: str
    events: list[str]
    enabled: bool
    created_at: datetime


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="signs every body (X-Darkroom-Signature); shown here only")


class WebhookDeliveryPublic(Public):
    id: int
    webhook_id: int
    event: str
    status: str = Field(description="pending | delivered | failed")
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]
