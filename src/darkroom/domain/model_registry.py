"""The model registry: models and their versions (ONNX weights with family, labels, input size).

An uploaded version is checked by loading it in onnxruntime and matching its output layout with
its family and labels, so a model no decoder understands is refused at upload (415/422), not in
the middle of a run. Ultralytics exports carry `names`, `imgsz` and `stride`, read so the user
does not retype them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from darkroom.db.models import Job, Model, ModelVersion
from darkroom.domain.accounts import Principal
from darkroom.domain.blobs import register_blobs
from darkroom.domain.datasets import check_name
from darkroom.domain.pagination import Page, PageRequest, paginate
from darkroom.errors import Conflict, Forbidden, InvalidInput, NotFound, UnsupportedMediaType
from darkroom.storage import BlobStore

__all__ = [
    "FAMILIES",
    "create_model",
    "create_model_version",
    "get_model",
    "get_model_version",
    "list_model_versions",
    "list_models",
    "versions_of_models",
]

FAMILIES = ("yolov5", "yolov8", "yolo11")


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
) -> ModelVersion:
    """Stores the weights and records the version once onnxruntime and a decoder accept it."""
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
    blob = store.put(fp, max_bytes=max_bytes)
    described = describe_onnx(store, blob.sha256, family=family, labels=labels)
    register_blobs(session, [(blob.sha256, blob.size, "application/onnx")])
    version = ModelVersion(
        model_id=model.id, name=name, format="onnx", family=described["family"],
        labels=described["labels"], input_width=described["input_width"],
        input_height=described["input_height"], weights_sha256=blob.sha256,
        meta=described["metadata"],
    )  # fmt: skip
    session.add(version)
    session.flush()
    return version


def describe_onnx(
    store: BlobStore, sha256: str, *, family: str | None, labels: list[str] | None
) -> dict[str, Any]:
    """Loads the weights in onnxruntime; answers family, labels, input size and metadata."""
    from darkroom.inference.decoders import check_layout
    from darkroom.inference.session import create_session, read_model_info

    local = store.local_path(sha256)
    with tempfile.TemporaryDirectory() as tmp:
        if local is None:
            local = Path(tmp) / "model.onnx"
            local.write_bytes(store.read(sha256))
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
        if candidate not in FAMILIES:
            raise InvalidInput(
                f"family must be one of {', '.join(FAMILIES)}", details={"loc": ["family"]}
            )
        try:
            check_layout(candidate, shape, len(labels))
        except ValueError as exc:
            errors.append(str(exc))
            continue
        return {
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
