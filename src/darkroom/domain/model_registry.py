"""The model registry: models and their versions (weights with format, family, labels, input
size).

An uploaded ONNX version is checked by loading it in onnxruntime and matching its output layout
with its family and labels, so a model no decoder understands is refused at upload (415/422),
not in the middle of a run. Ultralytics exports carry `names`, `imgsz` and `stride`, read so the
user does not retype them. A TensorFlow Object Detection API frozen graph (family `tf-od`,
format `tf-graph`) is checked by reading its GraphDef without TensorFlow, a SavedModel zip
(format `tf-saved-model`) by reading its serving signature the same way; both need a label
map. TF-OD graphs resize images themselves: their input size is what their preprocessor resizes
to ([0, 0] when the graph does not say).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from darkroom.db.models import Job, Model, ModelVersion
from darkroom.domain.accounts import Principal
from darkroom.domain.blobs import register_blobs
from darkroom.domain.pagination import Page, PageRequest, paginate
from darkroom.errors import Conflict, Forbidden, InvalidInput, NotFound, UnsupportedMediaType
from darkroom.inference.tf_graph import TF_FORMATS
from darkroom.storage import BlobStore
from darkroom.text import check_name

__all__ = [
    "FAMILIES",
    "FORMATS",
    "StoredWeights",
    "add_produced_version",
    "create_model",
    "create_model_version",
    "create_model_version_from_weights",
    "get_model",
    "get_model_version",
    "list_model_versions",
    "list_models",
    "made_by_job",
    "model_version_titles",
    "store_weights",
    "versions_of_models",
]

YOLO_FAMILIES = ("yolov5", "yolov8", "yolo11")
TF_OD = "tf-od"
FAMILIES = (*YOLO_FAMILIES, TF_OD)
FORMATS = ("onnx", *TF_FORMATS)


def _visible(principal: Principal) -> Any:
    return or_(Model.organization_id == principal.organization_id, Model.is_public)


def create_model(session: Session, principal: Principal, name: str, description: str = "") -> Model:
    name = check_name(name, "model")
    taken = select(Model.id).where(
        Model.organization_id == principal.organization_id, Model.name == name
    )
    if session.scalar(taken) is not None:
        raise Conflict(f"a model named {name!r} already exists", code="already_exists")
    model = Model(organization_id=principal.organization_id, name=name, description=description)
    session.add(model)
    session.flush()
    return model


def get_model(session: Session, principal: Principal, model_id: int) -> Model:
    model = session.scalar(select(Model).where(Model.id == model_id, _visible(principal)))
    if model is None:
        raise NotFound.of("model", model_id)
    return model


def list_models(session: Session, principal: Principal, page: PageRequest) -> Page[Model]:
    return paginate(session, select(Model).where(_visible(principal)), Model.id, page)


def get_model_version(session: Session, principal: Principal, version_id: int) -> ModelVersion:
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise NotFound.of("model version", version_id)
    try:
        get_model(session, principal, version.model_id)
    except NotFound:
        raise NotFound.of("model version", version_id) from None
    if principal.is_run:
        job = session.get(Job, principal.job_id)
        if job is None or job.model_version_id != version.id:
            raise Forbidden(f"this run's token cannot reach model version {version_id}")
    return version


def list_model_versions(
    session: Session, principal: Principal, model_id: int
) -> list[ModelVersion]:
    get_model(session, principal, model_id)
    stmt = select(ModelVersion).where(ModelVersion.model_id == model_id).order_by(ModelVersion.id)
    return list(session.scalars(stmt))


def made_by_job(session: Session, principal: Principal, job_id: int) -> list[ModelVersion]:
    """The model versions a job's runs made (a conversion's results), oldest first."""
    stmt = (
        select(ModelVersion)
        .join(Model)
        .where(ModelVersion.produced_by_job_id == job_id, _visible(principal))
        .order_by(ModelVersion.id)
    )
    return list(session.scalars(stmt))


def versions_of_models(
    session: Session, principal: Principal, model_ids: list[int]
) -> dict[int, list[ModelVersion]]:
    """Each model's versions, for many models in one query (the models page)."""
    out: dict[int, list[ModelVersion]] = {model_id: [] for model_id in model_ids}
    if model_ids:
        stmt = (
            select(ModelVersion)
            .join(Model)
            .where(ModelVersion.model_id.in_(model_ids), _visible(principal))
        )
        for mv in session.scalars(stmt.order_by(ModelVersion.id)):
            out[mv.model_id].append(mv)
    return out


@dataclass(frozen=True, slots=True)
class StoredWeights:
    """Weights in the blob store, understood, not yet a version: what an upload page shows
    before the version is saved (`create_model_version_from_weights`)."""

    sha256: str
    size: int
    described: dict[str, Any]  # format, family, labels, input_height/width, metadata


def store_weights(
    session: Session,
    store: BlobStore,
    fp: BinaryIO,
    *,
    family: str | None = None,
    labels: list[str] | None = None,
    max_bytes: int | None = None,
) -> StoredWeights:
    """Stores the weights and describes them (ONNX by onnxruntime and a decoder, a TF-OD model
    by its graph or serving signature); raises the upload's 4xx when they are not understood.
    The blob is registered, so unused weights are collected like any unreferenced blob."""
    _check_family(family)
    blob = store.put(fp, max_bytes=max_bytes)
    described = _describe(store, blob.sha256, family=family, labels=labels)
    register_blobs(session, [(blob.sha256, blob.size, "application/octet-stream")])
    return StoredWeights(blob.sha256, blob.size, described)


def create_model_version(
    session: Session,
    store: BlobStore,
    principal: Principal,
    model_id: int,
    fp: BinaryIO,
    *,
    name: str,
    family: str | None = None,
    labels: list[str] | None = None,
    max_bytes: int | None = None,
    produced_by_job_id: int | None = None,
) -> ModelVersion:
    """Stores the weights and records the version once they are understood."""
    model, name = _model_for_new_version(session, principal, model_id, name)
    weights = store_weights(session, store, fp, family=family, labels=labels, max_bytes=max_bytes)
    return _record(session, model, name, weights, produced_by_job_id)


def create_model_version_from_weights(
    session: Session,
    store: BlobStore,
    principal: Principal,
    model_id: int,
    sha256: str,
    *,
    name: str,
    family: str | None = None,
    labels: list[str] | None = None,
) -> ModelVersion:
    """A version of weights `store_weights` kept, described again with the labels (and family)
    the user confirmed. The caller vouches that the user uploaded them (the web form signs
    the sha256): a content address alone is no proof of having the bytes."""
    model, name = _model_for_new_version(session, principal, model_id, name)
    _check_family(family)
    if not store.exists(sha256):
        raise NotFound("these weights are no longer stored: upload them again",
                       code="weights_gone")  # fmt: skip
    size = store.size(sha256)
    described = _describe(store, sha256, family=family, labels=labels)
    register_blobs(session, [(sha256, size, "application/octet-stream")])
    return _record(session, model, name, StoredWeights(sha256, size, described), None)


def _model_for_new_version(
    session: Session, principal: Principal, model_id: int, name: str
) -> tuple[Model, str]:
    """The model a version named `name` may be added to, and the name as checked."""
    model = get_model(session, principal, model_id)
    if model.organization_id != principal.organization_id:
        raise Forbidden(f"model {model.name!r} is public and not yours to add versions to")
    name = check_name(name, "model version")
    taken = select(ModelVersion.id).where(
        ModelVersion.model_id == model.id, ModelVersion.name == name
    )
    if session.scalar(taken) is not None:
        raise Conflict(
            f"model {model.name!r} already has a version {name!r}", code="already_exists"
        )
    return model, name


def _check_family(family: str | None) -> None:
    if family is not None and family not in FAMILIES:
        raise InvalidInput(
            f"family must be one of {', '.join(FAMILIES)}", details={"loc": ["family"]}
        )


def _describe(
    store: BlobStore, sha256: str, *, family: str | None, labels: list[str] | None
) -> dict[str, Any]:
    with store.open(sha256) as fp:
        head = fp.read(4)
    if family == TF_OD or (family is None and _is_tf(head)):
        return describe_tf_od(store, sha256, labels=labels)
    return describe_onnx(store, sha256, family=family, labels=labels)


def _record(
    session: Session, model: Model, name: str, weights: StoredWeights, job_id: int | None
) -> ModelVersion:
    described = weights.described
    version = ModelVersion(
        model_id=model.id, name=name, format=described["format"],
        family=described["family"], labels=described["labels"],
        input_width=described["input_width"], input_height=described["input_height"],
        weights_sha256=weights.sha256, meta=described["metadata"], produced_by_job_id=job_id,
    )  # fmt: skip
    session.add(version)
    session.flush()
    return version


def add_produced_version(
    session: Session,
    store: BlobStore,
    principal: Principal,
    job: Job,
    fp: BinaryIO,
    *,
    name: str,
    family: str | None = None,
    labels: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    max_bytes: int | None = None,
) -> ModelVersion:
    """A version of the model `job` runs on, made by the job (a conversion): family and labels
    default to the source version's; the source is recorded in `metadata.source_version_id`."""
    if job.model_version_id is None:
        raise InvalidInput(f"job {job.id} runs on no model version", code="no_model_version")
    source = get_model_version(session, principal, job.model_version_id)
    if labels is not None and len(labels) != len(source.labels):
        raise InvalidInput(
            f"a version made from {source.name!r} keeps its {len(source.labels)} labels",
            details={"loc": ["labels"]},
        )
    version = create_model_version(
        session, store, principal, source.model_id, fp, name=name,
        family=family or source.family, labels=labels or source.labels, max_bytes=max_bytes,
        produced_by_job_id=job.id,
    )  # fmt: skip
    version.meta = {**version.meta, **(metadata or {}), "source_version_id": source.id}
    session.flush()
    return version


def describe_onnx(
    store: BlobStore, sha256: str, *, family: str | None, labels: list[str] | None
) -> dict[str, Any]:
    """Loads the weights in onnxruntime; answers family, labels, input size and metadata."""
    from darkroom.inference.decoders import check_layout
    from darkroom.inference.session import create_session, read_model_info

    with _local_copy(store, sha256) as local:
        try:
            session = create_session(local)
        except Exception as exc:  # onnxruntime raises its own types for non-ONNX bytes
            raise UnsupportedMediaType(
                f"not an ONNX model onnxruntime can load ({str(exc).splitlines()[0][:200]})",
                code="not_onnx",
            ) from exc
        try:
            info = read_model_info(session)
        except ValueError as exc:
            raise InvalidInput(f"unsupported model: {exc}", code="unsupported_model") from exc
    labels = labels or info.labels
    if not labels:
        raise InvalidInput(
            "the model has no 'names' metadata: give its labels in output order",
            code="labels_required", details={"loc": ["labels"]},
        )  # fmt: skip
    if info.input_size is None:
        raise InvalidInput("the model does not say its input size", code="unsupported_model")
    shape = info.output_shape[1:] if len(info.output_shape) == 3 else info.output_shape
    candidates = [family] if family else ["yolov8", "yolov5"]
    errors = []
    for candidate in candidates:
        try:
            check_layout(candidate, shape, len(labels))
        except ValueError as exc:
            errors.append(str(exc))
            continue
        return {
            "format": "onnx",
            "family": candidate,
            "labels": list(labels),
            "input_height": info.input_size[0],
            "input_width": info.input_size[1],
            "metadata": {**info.metadata, "stride": info.stride, "batch": info.batch},
        }
    raise InvalidInput(
        "no decoder understands this model's output: " + "; ".join(errors),
        code="unsupported_model",
        details={"output_shape": list(info.output_shape), "labels": len(labels)},
    )


# A GraphDef's first field is a node (field 1, length-delimited); an ONNX ModelProto starts with
# its ir_version (field 1, varint: 0x08).
GRAPHDEF_FIRST_BYTE = b"\x0a"
ZIP_MAGIC = b"PK\x03\x04"  # a SavedModel travels as a zip


def _is_tf(head: bytes) -> bool:
    return head[:1] == GRAPHDEF_FIRST_BYTE or head == ZIP_MAGIC


def _labels_required(what: str) -> InvalidInput:
    return InvalidInput(
        f"{what}: give its labels (a label map, or names in class-id order)",
        code="labels_required", details={"loc": ["labels"]},
    )  # fmt: skip


@contextmanager
def _local_copy(store: BlobStore, sha256: str) -> Iterator[Path]:
    """The blob as a local file (a temporary copy when the store is remote)."""
    local = store.local_path(sha256)
    if local is not None:
        yield local
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "weights"
        path.write_bytes(store.read(sha256))
        yield path


def describe_tf_od(store: BlobStore, sha256: str, *, labels: list[str] | None) -> dict[str, Any]:
    """A TF-OD model: a frozen graph or a SavedModel zip read without TensorFlow, or its ONNX
    conversion loaded in onnxruntime (the outputs checked by name)."""
    from darkroom.inference.tf_graph import read_graph_info

    if not labels:
        raise _labels_required("a TensorFlow detection model has no label names inside")
    with _local_copy(store, sha256) as local, local.open("rb") as fp:
        head = fp.read(4)
        if head == ZIP_MAGIC:
            return _describe_saved_model(local, labels)
        if head[:1] != GRAPHDEF_FIRST_BYTE:
            return _describe_tf_od_onnx(store, sha256, labels)
        fp.seek(0)
        data = fp.read()
    try:
        info = read_graph_info(data)
    except ValueError as exc:
        raise UnsupportedMediaType(
            f"not a TensorFlow frozen graph of the Object Detection API: {exc}",
            code="not_tf_graph",
        ) from exc
    return _tf_od("tf-graph", labels, info.input_size, {"nodes": info.nodes})


def _tf_od(
    fmt: str, labels: list[str], size: tuple[int, int] | None, metadata: dict[str, Any]
) -> dict[str, Any]:
    """A TF-OD model's description; a graph that does not say its input size answers 0 x 0."""
    height, width = size or (0, 0)
    return {"format": fmt, "family": TF_OD, "labels": list(labels), "input_height": height,
            "input_width": width, "metadata": metadata}  # fmt: skip


def _describe_saved_model(path: Path, labels: list[str]) -> dict[str, Any]:
    from darkroom.inference.tf_saved_model import read_saved_model_info

    try:
        info = read_saved_model_info(path)
    except ValueError as exc:
        raise UnsupportedMediaType(
            f"not a TensorFlow SavedModel zip of the Object Detection API: {exc}",
            code="not_tf_saved_model",
        ) from exc
    metadata = {"nodes": info.nodes, "input": info.input_key, "folder": info.root}
    return _tf_od("tf-saved-model", labels, info.input_size, metadata)


def _describe_tf_od_onnx(store: BlobStore, sha256: str, labels: list[str]) -> dict[str, Any]:
    from darkroom.inference.session import create_session
    from darkroom.inference.tf_od import TfOdPredictor

    with _local_copy(store, sha256) as local:
        try:
            session = create_session(local)
        except Exception as exc:
            raise UnsupportedMediaType(
                f"neither a TensorFlow frozen graph nor an ONNX model onnxruntime can load "
                f"({str(exc).splitlines()[0][:200]})",
                code="not_onnx",
            ) from exc
        try:
            TfOdPredictor(session, num_classes=len(labels))
        except ValueError as exc:
            raise InvalidInput(f"unsupported model: {exc}", code="unsupported_model") from exc
        meta = dict(session.get_modelmeta().custom_metadata_map)
    return {
        "format": "onnx",
        "family": TF_OD,
        "labels": list(labels),
        "input_height": 0,
        "input_width": 0,
        "metadata": meta,
    }


def model_version_titles(session: Session, principal: Principal, ids: set[int]) -> dict[int, str]:
    """Model version id -> "model / version" for many in one query (lists show them)."""
    if not ids:
        return {}
    stmt = (
        select(ModelVersion.id, Model.name, ModelVersion.name)
        .join(Model, Model.id == ModelVersion.model_id)
        .where(ModelVersion.id.in_(ids), Model.organization_id == principal.organization_id)
    )
    return {mid: f"{model} / {name}" for mid, model, name in session.execute(stmt)}
