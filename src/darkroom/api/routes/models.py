from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, Response, UploadFile, status
from fastapi.responses import FileResponse, StreamingResponse

from darkroom import charts
from darkroom.domain import evaluations, model_registry
from darkroom.errors import NotFound
from darkroom.http.deps import (
    PageDep,
    PrincipalDep,
    RunOrUserDep,
    SessionDep,
    SettingsDep,
    StoreDep,
)
from darkroom.http.schemas import (
    DbInt,
    EvaluationPublic,
    ModelCreate,
    ModelPublic,
    ModelVersionPublic,
    Page,
)
from darkroom.http.uploads import labels_or_label_map

router = APIRouter(tags=["models"])


@router.get("/models", response_model=Page[ModelPublic])
def list_models(session: SessionDep, principal: PrincipalDep, page: PageDep) -> object:
    return model_registry.list_models(session, principal, page)


@router.post("/models", response_model=ModelPublic, status_code=status.HTTP_201_CREATED)
def create_model(body: ModelCreate, session: SessionDep, principal: PrincipalDep) -> object:
    return model_registry.create_model(session, principal, body.name, body.description)


@router.get("/models/{model_id}", response_model=ModelPublic)
def get_model(model_id: DbInt, session: SessionDep, principal: PrincipalDep) -> object:
    return model_registry.get_model(session, principal, model_id)


@router.get("/models/{model_id}/versions", response_model=Page[ModelVersionPublic])
def list_model_versions(model_id: DbInt, session: SessionDep, principal: PrincipalDep) -> object:
    versions = model_registry.list_model_versions(session, principal, model_id)
    return Page[ModelVersionPublic](items=[ModelVersionPublic.of(v) for v in versions], next=None)


@router.post(
    "/models/{model_id}/versions",
    response_model=ModelVersionPublic,
    status_code=status.HTTP_201_CREATED,
)
def upload_model_version(
    model_id: DbInt,
    file: Annotated[
        UploadFile,
        File(description="ONNX weights, a TensorFlow OD frozen graph (.pb) or SavedModel (.zip)"),
    ],
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    settings: SettingsDep,
    name: Annotated[str, Form()] = "v1",
    family: Annotated[str | None, Form(description="yolov5, yolov8, yolo11 or tf-od")] = None,
    labels: Annotated[
        str | None, Form(description="in output order, JSON list or comma-separated")
    ] = None,
    label_map: Annotated[
        UploadFile | None,
        File(description="a TF-OD label map (.pbtxt), instead of labels"),
    ] = None,
) -> ModelVersionPublic:
    """Labels, input size and family are read from an Ultralytics export when not given; a
    TensorFlow graph needs its labels or label map."""
    names = labels_or_label_map(labels, label_map)
    version = model_registry.create_model_version(
        session, store, principal, model_id, file.file, name=name, family=family or None,
        labels=names, max_bytes=settings.max_upload_bytes,
    )  # fmt: skip
    return ModelVersionPublic.of(version)


@router.get("/model-versions/{version_id}", response_model=ModelVersionPublic)
def get_model_version(
    version_id: DbInt, session: SessionDep, principal: RunOrUserDep
) -> ModelVersionPublic:
    return ModelVersionPublic.of(model_registry.get_model_version(session, principal, version_id))


@router.get("/model-versions/{version_id}/evaluations", response_model=list[EvaluationPublic])
def list_evaluations(version_id: DbInt, session: SessionDep, principal: PrincipalDep) -> object:
    """The version's evaluations in the caller's organization, newest first."""
    return evaluations.list_evaluations(session, principal, version_id)


@router.get("/evaluations/{evaluation_id}", response_model=EvaluationPublic)
def get_evaluation(evaluation_id: DbInt, session: SessionDep, principal: PrincipalDep) -> object:
    return evaluations.get_evaluation(session, principal, evaluation_id)


@router.get("/evaluations/{evaluation_id}/{chart}.png", response_class=Response)
def evaluation_chart(
    evaluation_id: DbInt, chart: charts.Chart, session: SessionDep, principal: PrincipalDep
) -> Response:
    """The precision-recall curves or the confusion matrix, drawn from the stored figures."""
    found = evaluations.get_evaluation(session, principal, evaluation_id)
    data = charts.evaluation_chart(found.metrics, chart)
    if data is None:
        raise NotFound(f"evaluation {evaluation_id} has no {chart} figures")
    return Response(data, media_type="image/png", headers={"Cache-Control": "private"})


@router.get("/model-versions/{version_id}/weights", response_class=Response)
def download_weights(
    version_id: DbInt,
    request: Request,
    session: SessionDep,
    principal: RunOrUserDep,
    store: StoreDep,
) -> Response:
    version = model_registry.get_model_version(session, principal, version_id)
    headers = {"ETag": f'"{version.weights_sha256}"'}
    path = store.local_path(version.weights_sha256)
    if path is not None:
        return FileResponse(path, media_type="application/octet-stream", headers=headers)
    return StreamingResponse(
        store.iter_chunks(version.weights_sha256), media_type="application/octet-stream",
        headers=headers,
    )  # fmt: skip
