"""Deployments: create, change (a rollout), stop and start; predict; the prediction log."""

from __future__ import annotations

import asyncio
import io
import random
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime
from starlette.concurrency import run_in_threadpool

from darkroom.db.models import Blob, Deployment, utcnow
from darkroom.domain import deployments, metrics, predictions
from darkroom.domain.accounts import authenticate
from darkroom.domain.images import probe_image
from darkroom.domain.pagination import PageRequest
from darkroom.domain.predictions import PredictionFilter, label_field
from darkroom.errors import (
    DarkroomError,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
)
from darkroom.http.deps import (
    PageDep,
    PrincipalDep,
    RunOrUserDep,
    SessionDep,
    SettingsDep,
    StoreDep,
    bearer_token,
)
from darkroom.http.responses import blob_response
from darkroom.http.schemas import (
    AssetPublic,
    DbInt,
    DeploymentCreate,
    DeploymentPublic,
    DeploymentRevisionPublic,
    DeploymentTokenCreate,
    DeploymentTokenPublic,
    DeploymentUpdate,
    LiveFiguresPublic,
    MetricPointPublic,
    Page,
    PredictionPublic,
    ReviewRequest,
    SendRequest,
)
from darkroom.serving.supervisor import Unavailable
from darkroom.text import is_number

router = APIRouter(tags=["deployments"])

DeploymentRef = Annotated[str, "a deployment's id or name"]


class ServingOff(DarkroomError):
    status_code = 503
    code = "serving_off"


def _public(request: Request, deployment: Deployment) -> DeploymentPublic:
    supervisor = request.app.state.supervisor
    replicas = supervisor.replicas_of(deployment.id) if supervisor is not None else []
    return DeploymentPublic.of(deployment, replicas)


def _changed(request: Request) -> None:
    request.app.state.gate.forget()
    supervisor = request.app.state.supervisor
    if supervisor is not None:
        supervisor.wake()


@router.get("/deployments", response_model=Page[DeploymentPublic])
def list_deployments(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    model_version_id: DbInt | None = None,
) -> Page[DeploymentPublic]:
    found = deployments.list_deployments(session, principal, page, model_version_id)
    return Page[DeploymentPublic](items=[_public(request, d) for d in found.items], next=found.next)


@router.post("/deployments", response_model=DeploymentPublic, status_code=status.HTTP_201_CREATED)
def create_deployment(
    body: DeploymentCreate, request: Request, session: SessionDep, principal: PrincipalDep
) -> DeploymentPublic:
    """Serves the model version: replicas start at once (status `starting`, then `serving`)."""
    deployment = deployments.create_deployment(
        session, principal, name=body.name, model_version_id=body.model_version_id,
        settings=body.settings, description=body.description,
    )  # fmt: skip
    session.commit()
    _changed(request)
    return _public(request, deployment)


@router.get("/deployments/{deployment_id}", response_model=DeploymentPublic)
def get_deployment(
    deployment_id: DeploymentRef, request: Request, session: SessionDep, principal: PrincipalDep
) -> DeploymentPublic:
    return _public(request, deployments.get_deployment(session, principal, deployment_id))


@router.patch("/deployments/{deployment_id}", response_model=DeploymentPublic)
def update_deployment(
    deployment_id: DeploymentRef,
    body: DeploymentUpdate,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> DeploymentPublic:
    """A new model version or settings make a new revision; its replicas take over once one is
    ready, and the old ones finish what they hold."""
    deployment = deployments.update_deployment(
        session, principal, deployment_id, model_version_id=body.model_version_id,
        settings=body.settings, description=body.description,
    )  # fmt: skip
    session.commit()
    _changed(request)
    return _public(request, deployment)


@router.post("/deployments/{deployment_id}/stop", response_model=DeploymentPublic)
def stop_deployment(
    deployment_id: DeploymentRef, request: Request, session: SessionDep, principal: PrincipalDep
) -> DeploymentPublic:
    """Stops its replicas; predict then answers 409 until it is started again."""
    deployment = deployments.stop_deployment(session, principal, deployment_id)
    session.commit()
    _changed(request)
    return _public(request, deployment)


@router.post("/deployments/{deployment_id}/start", response_model=DeploymentPublic)
def start_deployment(
    deployment_id: DeploymentRef, request: Request, session: SessionDep, principal: PrincipalDep
) -> DeploymentPublic:
    deployment = deployments.start_deployment(session, principal, deployment_id)
    session.commit()
    _changed(request)
    return _public(request, deployment)


@router.get("/deployments/{deployment_id}/revisions", response_model=list[DeploymentRevisionPublic])
def list_deployment_revisions(
    deployment_id: DeploymentRef, session: SessionDep, principal: PrincipalDep
) -> list[DeploymentRevisionPublic]:
    """Every model version and setting it served with, oldest first."""
    revisions = deployments.list_revisions(session, principal, deployment_id)
    return [DeploymentRevisionPublic.of(r) for r in revisions]


@router.get("/deployments/{deployment_id}/revisions/{number}/weights", response_class=Response)
def download_revision_weights(
    deployment_id: DeploymentRef,
    number: DbInt,
    request: Request,
    store: StoreDep,
    session: SessionDep,
) -> Response:
    """The ONNX weights a revision serves: for people of the organization, and for the
    deployment's Ray Serve replicas (their replica token opens this and nothing else)."""
    principal = authenticate(session, bearer_token(request))
    if principal.is_run:
        raise Forbidden("a run token can only read its job's inputs and write its outputs")
    version = deployments.revision_weights(session, principal, deployment_id, number)
    return blob_response(request, store, version.weights_sha256, "application/octet-stream")


@router.post(
    "/deployments/{deployment_id}/tokens",
    response_model=DeploymentTokenPublic,
    status_code=status.HTTP_201_CREATED,
)
def create_deployment_token(
    deployment_id: DeploymentRef,
    body: DeploymentTokenCreate,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> DeploymentTokenPublic:
    """A token for clients of this deployment: it may call its predict and nothing else."""
    row, secret = deployments.create_token(session, principal, deployment_id, body.name)
    session.commit()
    _changed(request)
    return DeploymentTokenPublic(id=row.id, name=row.name, deployment_id=row.deployment_id or 0,
                                 token=secret)  # fmt: skip


# -- predict -------------------------------------------------------------------------------------


async def _image_body(request: Request, max_bytes: int) -> bytes:
    """The image: the raw body, or the `file` (else first) file of a multipart form."""
    too_large = PayloadTooLarge(f"the image is larger than {max_bytes} bytes",
                                details={"max_bytes": max_bytes})  # fmt: skip
    declared = request.headers.get("content-length")
    if declared is not None and is_number(declared) and int(declared) > max_bytes + 64 * 1024:
        raise too_large
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        async with request.form(max_files=1, max_fields=10) as form:
            upload = form.get("file") or next(
                (v for v in form.values() if hasattr(v, "read")), None
            )
            if upload is None or isinstance(upload, str):
                raise InvalidInput("the form has no image: send it as the field 'file'",
                                   code="empty_file", details={"loc": ["file"]})  # fmt: skip
            data = await upload.read(max_bytes + 1)
    else:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise too_large
            chunks.append(chunk)
        data = b"".join(chunks)
    if len(data) > max_bytes:
        raise too_large
    return data


@router.post(
    "/deployments/{deployment_id}/predict",
    response_model=PredictionPublic,
    responses={409: {"description": "stopped or failed"}, 503: {"description": "no replica"}},
)
async def predict(deployment_id: DeploymentRef, request: Request) -> JSONResponse:
    """Boxes for one image (the raw body, or a multipart `file`), as `yolo-preannotation` draws
    them with the model's label names. A user's token or the deployment's own token. The
    prediction is logged before the answer; a sampled share of images is stored with it."""
    started = time.perf_counter()
    state = request.app.state
    supervisor = state.supervisor
    if supervisor is None:
        raise ServingOff("this server does not serve deployments (DARKROOM_SERVE_DEPLOYMENTS)")
    data = await _image_body(request, state.settings.max_predict_bytes)
    token = bearer_token(request)
    deployment = state.gate.cached(token, deployment_id)
    if deployment is None:
        deployment = await run_in_threadpool(state.gate.admit, token, deployment_id)
    info = probe_image(io.BytesIO(data), "image", state.settings.max_image_pixels,
                       decoded_next=True)  # fmt: skip
    served = await supervisor.predict(deployment.id, deployment.name, data)
    answer = served.answer
    if not answer["ok"]:
        if answer["code"] == "corrupt_image":
            raise InvalidInput(answer["message"], code="corrupt_image")
        raise Unavailable(answer["message"], code=answer["code"])
    total_ms = (time.perf_counter() - started) * 1000
    shapes = answer["shapes"]
    row: dict[str, Any] = {
        "deployment_id": deployment.id, "model_version_id": served.model_version_id,
        "revision": served.revision, "queue_ms": answer["queue_ms"],
        "inference_ms": answer["inference_ms"], "total_ms": total_ms, "width": info.width,
        "height": info.height, "shapes": shapes, "labels": label_field(shapes),
        "max_score": max((s["score"] for s in shapes), default=None), "image_mime": info.mime,
        "created_at": utcnow(),
    }  # fmt: skip
    sampled = random.random() < deployment.settings["sampling_rate"]
    prediction_id = await asyncio.wrap_future(
        state.prediction_log.write(row, data if sampled else None)
    )
    return JSONResponse({
        "id": prediction_id, "deployment_id": deployment.id,
        "model_version_id": served.model_version_id, "revision": served.revision,
        "created_at": row["created_at"].isoformat(),
        "latency_ms": {"queue": answer["queue_ms"], "inference": answer["inference_ms"],
                       "total": total_ms},
        "width": info.width, "height": info.height, "shapes": shapes,
        "image_sha256": row.get("image_sha256"), "review_status": "unreviewed",
    })  # fmt: skip


# -- the log -------------------------------------------------------------------------------------


@router.get("/deployments/{deployment_id}/predictions", response_model=Page[PredictionPublic])
def list_predictions(
    deployment_id: DeploymentRef,
    session: SessionDep,
    principal: PrincipalDep,
    after: Annotated[DbInt | None, Query(description="id of the last prediction seen")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    order: Literal["newest", "oldest"] = "newest",
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    label: str | None = None,
    min_score: float | None = None,
    model_version_id: DbInt | None = None,
    review_status: str | None = None,
) -> Page[PredictionPublic]:
    """The prediction log, newest first by default; `since`/`until` bound `created_at`."""
    flt = PredictionFilter(since, until, label, min_score, model_version_id, review_status)
    page = PageRequest(after, limit, newest_first=order == "newest")
    found = predictions.list_predictions(session, principal, deployment_id, page, flt)
    return Page[PredictionPublic](items=[PredictionPublic.of(p) for p in found.items],
                                  next=found.next)  # fmt: skip


@router.post("/deployments/{deployment_id}/predictions/review",
             response_model=list[PredictionPublic])  # fmt: skip
def review_predictions(
    deployment_id: DeploymentRef, body: ReviewRequest, session: SessionDep, principal: PrincipalDep
) -> list[PredictionPublic]:
    """A person's verdict on predictions: accepted, rejected (or back to unreviewed)."""
    found = predictions.review_predictions(session, principal, deployment_id, body.ids,
                                           body.status)  # fmt: skip
    return [PredictionPublic.of(p) for p in found]


@router.post("/deployments/{deployment_id}/predictions/send", response_model=list[AssetPublic])
def send_predictions(
    deployment_id: DeploymentRef,
    body: SendRequest,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    settings: SettingsDep,
) -> list[AssetPublic]:
    """The chosen sampled predictions into a dataset version: their images as assets with the
    boxes (accepted ones as ground truth, the others to fix, marked `fixed`), each linked back
    to the deployment and prediction in its metadata."""
    assets = predictions.send_to_version(
        session, store, principal, deployment_id, body.ids, body.version_id,
        max_pixels=settings.max_image_pixels,
    )  # fmt: skip
    return [AssetPublic.of(a) for a in assets]


@router.get("/predictions/{prediction_id}", response_model=PredictionPublic)
def get_prediction(
    prediction_id: DbInt, session: SessionDep, principal: RunOrUserDep
) -> PredictionPublic:
    return PredictionPublic.of(predictions.get_prediction(session, principal, prediction_id))


@router.get("/predictions/{prediction_id}/image", response_class=Response)
def get_prediction_image(
    prediction_id: DbInt,
    request: Request,
    session: SessionDep,
    principal: RunOrUserDep,
    store: StoreDep,
) -> Response:
    """The image a sampled prediction was made on (404 when it was not sampled)."""
    found = predictions.get_prediction(session, principal, prediction_id)
    if found.image_sha256 is None:
        raise NotFound(f"prediction {prediction_id}'s image was not sampled")
    blob = session.get(Blob, found.image_sha256)
    return blob_response(request, store, found.image_sha256, blob.mime if blob else "image/jpeg")


@router.get("/deployments/{deployment_id}/figures", response_model=LiveFiguresPublic)
def live_figures(
    deployment_id: DeploymentRef,
    session: SessionDep,
    principal: PrincipalDep,
    minutes: Annotated[int, Query(ge=1, le=1440)] = 60,
) -> Any:
    """Requests per minute, latency p50/p95 and predictions per label of the last minutes."""
    return predictions.live_figures(session, principal, deployment_id, minutes)


@router.get("/deployments/{deployment_id}/metrics", response_model=list[MetricPointPublic])
def list_deployment_metrics(
    deployment_id: DeploymentRef,
    session: SessionDep,
    principal: PrincipalDep,
    key: str | None = None,
) -> Any:
    """The numbers processings on this deployment recorded, oldest first, dated by the end of
    their job's window: one point per run."""
    return metrics.deployment_series(session, principal, deployment_id, key)
