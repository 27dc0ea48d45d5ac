"""Tables. Only the migrations change the schema; this module mirrors it for the ORM.

Ids are integers (keyset pagination orders by them). Every timestamp is timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from darkroom.sources import Source, parse_source, source_doc
from darkroom.values import (
    ACTIVE_STATUSES,
    AuthorKind,
    DeploymentStatus,
    ProcessingType,
    RunStatus,
    ShapeKind,
    TargetKind,
    TriggerKind,
    utcnow,
)

__all__ = [
    "ACTIVE_STATUSES",
    "SHAPE_DATA",
    "Annotation",
    "ApiToken",
    "Asset",
    "AssetTag",
    "AuthorKind",
    "Base",
    "Blob",
    "Dataset",
    "DatasetVersion",
    "Deployment",
    "DeploymentRevision",
    "DeploymentStatus",
    "FinishedAsset",
    "Job",
    "Label",
    "LogLine",
    "Metric",
    "Model",
    "ModelVersion",
    "Organization",
    "Prediction",
    "Processing",
    "ProcessingRevision",
    "ProcessingType",
    "Run",
    "RunRequest",
    "RunStatus",
    "Shape",
    "ShapeKind",
    "TargetKind",
    "TriggerKind",
    "User",
    "Worker",
    "utcnow",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

IdType = BigInteger().with_variant(Integer(), "sqlite")
# Optional JSON values: None is SQL NULL, not the text 'null' each row would store and decode.
OptionalJSON = JSON(none_as_null=True)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always returns aware datetimes (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime stored; use darkroom.db.models.utcnow()")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class SourceType(TypeDecorator[Source]):
    """A revision's source, typed in Python and a JSON object in the database (`parse_source`
    reads what older releases stored too: keys it does not know are dropped)."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Source | None, dialect: Any) -> dict[str, Any] | None:
        return None if value is None else source_doc(value)

    def process_result_value(self, value: dict[str, Any] | None, dialect: Any) -> Source | None:
        return None if value is None else parse_source(value, strict=False)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


def _id() -> Mapped[int]:
    return mapped_column(IdType, primary_key=True, autoincrement=True)


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[int] = _id()
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # The last job number given in this organization (`Job.number`).
    jobs_numbered: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = _id()
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    organization: Mapped[Organization] = relationship(lazy="joined")


class ApiToken(Base):
    """A bearer token; only its sha256 is stored, so a leaked database leaks no token."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = _id()
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    # Run-scoped tokens: valid only while that run is running, for that job's data.
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), default=None, index=True
    )
    # Deployment tokens: they may call that deployment's predict and nothing else.
    deployment_id: Mapped[int | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE", use_alter=True), default=None,
        index=True,
    )  # fmt: skip
    # None: a person's, a run's or a deployment client's token; "replica": a Ray Serve
    # replica's, which may only fetch its deployment's weights.
    scope: Mapped[str | None] = mapped_column(String(16), default=None)
    user: Mapped[User] = relationship(lazy="joined")


class Blob(Base):
    """Content-addressed bytes. Rows nothing references are garbage (see domain.blobs)."""

    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    mime: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Dataset(Base):
    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)
    id: Mapped[int] = _id()
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DatasetVersion(Base):
    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "name"),)
    id: Mapped[int] = _id()
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    parent_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="SET NULL"), default=None
    )
    produced_by_job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL", use_alter=True), default=None
    )
    produced_by: Mapped[Job | None] = relationship(
        foreign_keys=[produced_by_job_id], lazy="select", viewonly=True
    )
    # A preview's scratch copy of a few assets of that version (hidden from lists).
    preview_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="CASCADE"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    dataset: Mapped[Dataset] = relationship(lazy="joined")
    parent: Mapped[DatasetVersion | None] = relationship(
        remote_side="DatasetVersion.id", foreign_keys=[parent_version_id], lazy="select"
    )


class Label(Base):
    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("version_id", "name"),)
    id: Mapped[int] = _id()
    version_id: Mapped[int] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    color: Mapped[str] = mapped_column(String(7))
    position: Mapped[int] = mapped_column(Integer, default=0)
    # The label's id in the file it came from (a COCO category id), written back on export.
    external_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # COCO's keypoint schema of the category: {"names": [...], "skeleton": [[1, 2], ...]}.
    keypoints: Mapped[dict[str, Any] | None] = mapped_column(OptionalJSON, default=None)


class Asset(Base):
    __tablename__ = "assets"
    __table_args__ = (
        UniqueConstraint("version_id", "filename"),
        Index("ix_assets_version_id_id", "version_id", "id"),
    )
    id: Mapped[int] = _id()
    version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"))
    blob_sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"), index=True)
    filename: Mapped[str] = mapped_column(String(500))
    mime: Mapped[str] = mapped_column(String(100))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    tag_rows: Mapped[list[AssetTag]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin", order_by="AssetTag.tag"
    )

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]


class AssetTag(Base):
    __tablename__ = "asset_tags"
    __table_args__ = (Index("ix_asset_tags_tag_asset_id", "tag", "asset_id"),)
    asset_id: Mapped[int] = mapped_column(
        ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(100), primary_key=True)


class Annotation(Base):
    """One author's shapes on one asset: a person's (`user`) or a processing run's (`run`)."""

    __tablename__ = "annotations"
    __table_args__ = (UniqueConstraint("asset_id", "author_kind", "author_id"),)
    id: Mapped[int] = _id()
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    author_kind: Mapped[str] = mapped_column(String(10))
    author_id: Mapped[int] = mapped_column(IdType)
    status: Mapped[str] = mapped_column(String(20), default="complete")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    shapes: Mapped[list[Shape]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin", order_by="Shape.id"
    )


class Shape(Base):
    """A shape in pixels: rectangles and masks use x, y, w, h; polygons and points use
    `points` (a polygon of several parts also lists them all in `rings`, the first being
    `points`); a mask holds a COCO RLE; any shape may carry keypoints [[x, y, v], …] and
    attributes (format flags such as VOC's `difficult`, COCO's `iscrowd`, CVAT's)."""

    __tablename__ = "shapes"
    id: Mapped[int] = _id()
    annotation_id: Mapped[int] = mapped_column(
        ForeignKey("annotations.id", ondelete="CASCADE"), index=True
    )
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    x: Mapped[float | None] = mapped_column(Float, default=None)
    y: Mapped[float | None] = mapped_column(Float, default=None)
    w: Mapped[float | None] = mapped_column(Float, default=None)
    h: Mapped[float | None] = mapped_column(Float, default=None)
    points: Mapped[list[list[float]] | None] = mapped_column(OptionalJSON, default=None)
    score: Mapped[float | None] = mapped_column(Float, default=None)
    rings: Mapped[list[list[list[float]]] | None] = mapped_column(OptionalJSON, default=None)
    mask: Mapped[dict[str, Any] | None] = mapped_column(OptionalJSON, default=None)
    keypoints: Mapped[list[list[float]] | None] = mapped_column(OptionalJSON, default=None)
    attributes: Mapped[dict[str, Any] | None] = mapped_column(OptionalJSON, default=None)


# What a shape is, apart from where it is stored: copied, exported and listed together.
SHAPE_DATA = ("label_id", "kind", "x", "y", "w", "h", "points", "score", "rings", "mask",
              "keypoints", "attributes")  # fmt: skip


class Processing(Base):
    """A named piece of code; its behaviour lives in immutable revisions.

    Built-ins have no organization and are public; users' processings belong to their
    organization and are public only when an admin publishes them.
    """

    __tablename__ = "processings"
    __table_args__ = (
        UniqueConstraint("organization_id", "name"),
        Index(
            "uq_processings_builtin_name",
            "name",
            unique=True,
            sqlite_where=text("organization_id IS NULL"),
            postgresql_where=text("organization_id IS NULL"),
        ),
    )
    id: Mapped[int] = _id()
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), default=None
    )
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(40), default=TargetKind.dataset_version)
    description: Mapped[str] = mapped_column(Text, default="")
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    needs_model: Mapped[bool] = mapped_column(Boolean, default=False)
    # The model families it can run (None: any); a launch with another is refused.
    model_families: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    created_by: Mapped[int | None] = mapped_column(IdType, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ProcessingRevision(Base):
    """What runs: source, parameter schema with defaults, timeout, resources. Never edited."""

    __tablename__ = "processing_revisions"
    __table_args__ = (UniqueConstraint("processing_id", "number"),)
    id: Mapped[int] = _id()
    processing_id: Mapped[int] = mapped_column(
        ForeignKey("processings.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    source: Mapped[Source] = mapped_column(SourceType)
    parameters_schema: Mapped[dict[str, Any]] = mapped_column(JSON)
    timeout_s: Mapped[int] = mapped_column(Integer)
    resources: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    digest: Mapped[str] = mapped_column(String(64))
    # A development revision (`darkroom processing run-local`): launches and re-runs of the
    # processing keep taking the newest regular revision.
    is_dev: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    bundle_sha256: Mapped[str | None] = mapped_column(
        ForeignKey("blobs.sha256"), index=True, default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Job(Base):
    """One launch of a processing on a target, with its resolved parameters."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_organization_id_id", "organization_id", "id"),
        Index("ix_jobs_organization_id_number", "organization_id", "number", unique=True),
        UniqueConstraint("pipeline_run_id", "pipeline_step"),
    )
    id: Mapped[int] = _id()
    # What pages call it: 1, 2, 3… within its organization; None for a preview.
    number: Mapped[int | None] = mapped_column(Integer, default=None)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    processing_id: Mapped[int] = mapped_column(
        ForeignKey("processings.id", ondelete="CASCADE"), index=True
    )
    target_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="SET NULL"), index=True
    )
    model_version_id: Mapped[int | None] = mapped_column(IdType, default=None)
    # A job on a deployment reads its predictions made in [window_start, window_end).
    target_deployment_id: Mapped[int | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="SET NULL", use_alter=True), default=None,
        index=True,
    )  # fmt: skip
    window_start: Mapped[datetime | None] = mapped_column(default=None)
    window_end: Mapped[datetime | None] = mapped_column(default=None)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[int] = mapped_column(IdType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A step of a pipeline run: at most one job per step of each pipeline run.
    pipeline_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("pipeline_runs.id", ondelete="SET NULL", use_alter=True), default=None,
        index=True,
    )  # fmt: skip
    pipeline_step: Mapped[str | None] = mapped_column(String(100), default=None)
    trigger_id: Mapped[int | None] = mapped_column(
        ForeignKey("triggers.id", ondelete="SET NULL", use_alter=True), default=None, index=True
    )
    processing: Mapped[Processing] = relationship(lazy="joined")
    runs: Mapped[list[Run]] = relationship(
        lazy="selectin", order_by="Run.attempt", passive_deletes=True, back_populates="job"
    )


class Run(Base):
    """One execution of a job. At most one run of a job is pending or running (partial index)."""

    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("job_id", "attempt"),
        Index(
            "uq_runs_one_active_per_job",
            "job_id",
            unique=True,
            sqlite_where=text("status IN ('pending', 'running')"),
            postgresql_where=text("status IN ('pending', 'running')"),
        ),
        Index("ix_runs_status_queued_at", "status", "queued_at"),
    )
    id: Mapped[int] = _id()
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    revision_id: Mapped[int] = mapped_column(ForeignKey("processing_revisions.id"))
    status: Mapped[str] = mapped_column(String(20), default=RunStatus.pending)
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(default=None)
    worker_id: Mapped[str | None] = mapped_column(String(100), default=None)
    exit_code: Mapped[int | None] = mapped_column(Integer, default=None)
    failure_reason: Mapped[str | None] = mapped_column(String(20), default=None)
    error_summary: Mapped[str | None] = mapped_column(Text, default=None)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer, default=None)
    resume: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # What it ran with: a re-run may change the job's parameters, each run keeps its own.
    parameters: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    job: Mapped[Job] = relationship(back_populates="runs")
    revision: Mapped[ProcessingRevision] = relationship(lazy="joined")

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at
        if end is None:
            return None
        return (end - self.started_at).total_seconds()


class FinishedAsset(Base):
    """An asset a run is done with (written with its annotations): what a resumed re-run skips."""

    __tablename__ = "finished_assets"
    run_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    asset_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class RunRequest(Base):
    """The answer to a run's write sent with an `Idempotency-Key`, replayed when it is retried."""

    __tablename__ = "run_requests"
    run_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)


class LogLine(Base):
    __tablename__ = "log_lines"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(default=utcnow)
    stream: Mapped[str] = mapped_column(String(10))
    text: Mapped[str] = mapped_column(Text)


class Model(Base):
    """A named model of an organization; its weights live in versions."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)
    id: Mapped[int] = _id()
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelVersion(Base):
    """Weights (a blob) with what it takes to run them: format, family, labels, input size."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "name"),)
    id: Mapped[int] = _id()
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    format: Mapped[str] = mapped_column(String(20), default="onnx")
    family: Mapped[str] = mapped_column(String(40))
    labels: Mapped[list[str]] = mapped_column(JSON)
    input_width: Mapped[int] = mapped_column(Integer)
    input_height: Mapped[int] = mapped_column(Integer)
    weights_sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"), index=True)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    produced_by_job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    model: Mapped[Model] = relationship(lazy="joined")
    produced_by: Mapped[Job | None] = relationship(lazy="select", viewonly=True)


class Evaluation(Base):
    """A model version measured on a dataset version's ground truth (the shapes people drew),
    written by the `model-evaluation` run that computed it. `metrics` holds COCO mAP@[.5:.95],
    mAP@.5, recall and per-label figures."""

    __tablename__ = "evaluations"
    id: Mapped[int] = _id()
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), index=True
    )
    dataset_version_id: Mapped[int] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="CASCADE"), index=True
    )
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    job: Mapped[Job | None] = relationship(lazy="select", viewonly=True)


class Deployment(Base):
    """A model version served behind `POST /deployments/{id}/predict`. What it serves and how
    (model version, thresholds, batching, replicas, sampling) lives in immutable revisions; the
    deployment points at its current one, so every switch is kept."""

    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)
    id: Mapped[int] = _id()
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    revision_id: Mapped[int | None] = mapped_column(
        ForeignKey("deployment_revisions.id", use_alter=True), default=None
    )
    status: Mapped[str] = mapped_column(String(20), default=DeploymentStatus.starting)
    status_reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_by: Mapped[int] = mapped_column(IdType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    revision: Mapped[DeploymentRevision] = relationship(lazy="joined", foreign_keys=[revision_id])


class DeploymentRevision(Base):
    """One state of a deployment: the model version it serves and its settings. Never edited."""

    __tablename__ = "deployment_revisions"
    __table_args__ = (UniqueConstraint("deployment_id", "number"),)
    id: Mapped[int] = _id()
    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[int] = mapped_column(IdType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    model_version: Mapped[ModelVersion] = relationship(lazy="joined")


class Prediction(Base):
    """One answered predict request: who served it, how long it took, what it found, and the
    image when it was sampled. `labels` ("|a|b|") and `max_score` let lists filter without
    reading the shapes."""

    __tablename__ = "predictions"
    __table_args__ = (
        Index("ix_predictions_deployment_id_id", "deployment_id", "id"),
        Index("ix_predictions_deployment_id_created_at", "deployment_id", "created_at"),
    )
    id: Mapped[int] = _id()
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    model_version_id: Mapped[int] = mapped_column(IdType)
    revision: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    queue_ms: Mapped[float] = mapped_column(Float)
    inference_ms: Mapped[float] = mapped_column(Float)
    total_ms: Mapped[float] = mapped_column(Float)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    shapes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    labels: Mapped[str] = mapped_column(String(2000), default="|")
    max_score: Mapped[float | None] = mapped_column(Float, default=None)
    image_sha256: Mapped[str | None] = mapped_column(
        ForeignKey("blobs.sha256"), default=None, index=True
    )
    review_status: Mapped[str] = mapped_column(String(20), default="unreviewed")


class Metric(Base):
    """A figure a run recorded (`ctx.record_metrics`): a number, or a structure (a histogram,
    counts per label) in `data`. On a deployment, drawn over time by its window's end."""

    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_deployment_id_key", "deployment_id", "key"),)
    id: Mapped[int] = _id()
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    deployment_id: Mapped[int | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), default=None
    )
    key: Mapped[str] = mapped_column(String(200))
    value: Mapped[float | None] = mapped_column(Float, default=None)
    data: Mapped[dict[str, Any] | list[Any] | None] = mapped_column(OptionalJSON, default=None)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Pipeline(Base):
    """A named chain of processings; its steps live in immutable revisions."""

    __tablename__ = "pipelines"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)
    id: Mapped[int] = _id()
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int] = mapped_column(IdType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PipelineRevision(Base):
    """One definition of a pipeline: its steps, checked at creation. Never edited."""

    __tablename__ = "pipeline_revisions"
    __table_args__ = (UniqueConstraint("pipeline_id", "number"),)
    id: Mapped[int] = _id()
    pipeline_id: Mapped[int] = mapped_column(
        ForeignKey("pipelines.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[int] = mapped_column(IdType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PipelineRun(Base):
    """One launch of a pipeline revision on an input version. Its steps are ordinary jobs
    (`Job.pipeline_run_id`); its status is derived from theirs, never stored."""

    __tablename__ = "pipeline_runs"
    __table_args__ = (Index("ix_pipeline_runs_organization_id_id", "organization_id", "id"),)
    id: Mapped[int] = _id()
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    pipeline_id: Mapped[int] = mapped_column(
        ForeignKey("pipelines.id", ondelete="CASCADE"), index=True
    )
    revision_id: Mapped[int] = mapped_column(ForeignKey("pipeline_revisions.id"))
    input_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="SET NULL"), default=None
    )
    created_by: Mapped[int] = mapped_column(IdType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set by cancel: no step starts after it.
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)
    trigger_id: Mapped[int | None] = mapped_column(
        ForeignKey("triggers.id", ondelete="SET NULL", use_alter=True), default=None, index=True
    )
    pipeline: Mapped[Pipeline] = relationship(lazy="joined")
    revision: Mapped[PipelineRevision] = relationship(lazy="joined")


class Trigger(Base):
    """What starts a pipeline or a processing by itself. It fires by moving its `cursor` (the
    last asset or version id it consumed) or its `next_fire_at` with a conditional update in
    the transaction that launches: whichever scheduler wins, the event fires once."""

    __tablename__ = "triggers"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)
    id: Mapped[int] = _id()
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    pipeline_id: Mapped[int | None] = mapped_column(
        ForeignKey("pipelines.id", ondelete="CASCADE"), default=None
    )
    processing_id: Mapped[int | None] = mapped_column(
        ForeignKey("processings.id", ondelete="CASCADE"), default=None
    )
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    model_version_id: Mapped[int | None] = mapped_column(IdType, default=None)
    version_id: Mapped[int | None] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="CASCADE"), default=None
    )
    dataset_id: Mapped[int | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), default=None
    )
    min_assets: Mapped[int] = mapped_column(Integer, default=1)
    debounce_s: Mapped[float] = mapped_column(Float, default=10.0)
    cron: Mapped[str | None] = mapped_column(String(200), default=None)
    cursor: Mapped[int] = mapped_column(IdType, default=0)
    next_fire_at: Mapped[datetime | None] = mapped_column(default=None)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    fired: Mapped[int] = mapped_column(Integer, default=0)
    last_fired_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_by: Mapped[int] = mapped_column(IdType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Webhook(Base):
    """Where the ends of jobs, runs and pipeline runs are posted, signed with `secret`."""

    __tablename__ = "webhooks"
    id: Mapped[int] = _id()
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))
    events: Mapped[list[str]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int] = mapped_column(IdType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One event for one webhook, written in the transaction of the event itself (an outbox:
    nothing is lost on a crash) and sent, retried with backoff, by the webhook sender."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook_id_id", "webhook_id", "id"),
    )
    id: Mapped[int] = _id()
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(50))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)


class Worker(Base):
    """A scheduler that claims runs (`darkroom serve`'s or a `darkroom worker`), as it last
    advertised itself: what it can take, GPUs included. Rows not seen for a day are removed."""

    __tablename__ = "workers"
    id: Mapped[str] = mapped_column(String(100), primary_key=True)  # as runs' worker_id
    hostname: Mapped[str] = mapped_column(String(255))
    executor: Mapped[str] = mapped_column(String(20))
    slots: Mapped[int] = mapped_column(Integer)
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    gpus_free: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
