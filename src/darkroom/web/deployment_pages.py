"""Deployments in the browser: the list, a deployment's live page (status, replicas, traffic,
latency, boxes per label, metrics over time, rollouts, jobs), its settings and rollout form,
launching a processing on its predictions, and the review of sampled predictions that sends
them into a dataset version. Deploying starts from a model version's page."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from darkroom.db.models import Blob, TargetKind, utcnow
from darkroom.domain import (
    deployments,
    jobs,
    metrics,
    model_registry,
    predictions,
    processings,
    versions,
)
from darkroom.domain.accounts import Principal
from darkroom.domain.pagination import PageRequest
from darkroom.errors import DarkroomError, InvalidInput
from darkroom.http.deps import SessionDep, StoreDep
from darkroom.http.responses import blob_response
from darkroom.text import is_number
from darkroom.web.auth import UserDep
from darkroom.web.notices import with_notice
from darkroom.web.render import page

__all__ = ["router"]

router = APIRouter()

# The settings the forms offer, with how each is read from the form.
NUMBER_SETTINGS = {"confidence_threshold": float, "max_batch": int, "max_wait_ms": float,
                   "replicas": int, "sampling_rate": float}  # fmt: skip
REVIEW_PAGE = 24


def _settings_of(form: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, kind in NUMBER_SETTINGS.items():
        raw = (form.get(key) or "").strip()
        if raw:
            try:
                out[key] = kind(raw)
            except ValueError:
                raise InvalidInput(f"{key}: {raw!r} is not a number") from None
    labels = (form.get("labels") or "").strip()
    if "labels" in form:
        out["labels"] = [x.strip() for x in labels.split(",") if x.strip()] or None
    return out


@router.get("/deployments", response_class=HTMLResponse)
def deployments_page(request: Request, session: SessionDep, user: UserDep) -> HTMLResponse:
    found = deployments.list_deployments(session, user, PageRequest(limit=1000)).items
    return page(request, "deployments.html", deployments=found)


def _context(session: Session, user: Principal, request: Request, ident: str) -> dict[str, Any]:
    deployment = deployments.get_deployment(session, user, ident)
    supervisor = request.app.state.supervisor
    figures = predictions.live_figures(session, user, deployment.id, 60)
    series: dict[str, list[metrics.MetricPoint]] = {}
    for point in metrics.deployment_series(session, user, deployment.id):
        series.setdefault(point.key, []).append(point)
    return {
        "deployment": deployment, "figures": figures, "series": series,
        "replicas": supervisor.replicas_of(deployment.id) if supervisor else [],
        "peak": max(figures.per_minute) or 1,
    }  # fmt: skip


@router.get("/deployments/{ident}", response_class=HTMLResponse)
def deployment_page(
    request: Request, ident: str, session: SessionDep, user: UserDep
) -> HTMLResponse:
    """The live part (`#deployment-live`) refreshes itself every 2 s."""
    context = _context(session, user, request, ident)
    deployment = context["deployment"]
    model_version = deployment.revision.model_version
    visible = processings.list_processings(session, user, PageRequest(limit=1000)).items
    on_deployments = [p for p in visible if p.target == TargetKind.deployment]
    return page(
        request, "deployment.html", **context,
        revisions=deployments.list_revisions(session, user, deployment.id),
        model_versions=model_registry.list_model_versions(session, user, model_version.model_id),
        recent=predictions.list_predictions(session, user, deployment.id,
                                            PageRequest(limit=10, newest_first=True)).items,
        deployment_jobs=jobs.list_jobs(session, user, PageRequest(limit=50, newest_first=True),
                                       jobs.JobFilter(deployment_id=deployment.id)).items,
        on_deployments=on_deployments,
        version_titles=versions.recent_version_titles(session, user),
    )  # fmt: skip


@router.post("/model-versions/{version_id}/deploy", response_class=HTMLResponse)
async def deploy(request: Request, version_id: int, session: SessionDep, user: UserDep) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    created = deployments.create_deployment(
        session, user, name=form.get("name", ""), model_version_id=version_id,
        settings=_settings_of(form),
    )  # fmt: skip
    session.commit()
    _wake(request)
    return RedirectResponse(with_notice(f"/deployments/{created.id}", "deployed"), 303)


@router.post("/deployments/{ident}/settings", response_class=HTMLResponse)
async def update_settings(
    request: Request, ident: str, session: SessionDep, user: UserDep
) -> Response:
    """Settings and the model version it serves: a new revision when anything changed."""
    form = {k: str(v) for k, v in (await request.form()).items()}
    raw_version = form.get("model_version_id", "").strip()
    updated = deployments.update_deployment(
        session, user, ident, settings=_settings_of(form),
        model_version_id=int(raw_version) if is_number(raw_version) else None,
    )  # fmt: skip
    session.commit()
    _wake(request)
    return RedirectResponse(with_notice(f"/deployments/{updated.id}", "deployment-saved"), 303)


@router.post("/deployments/{ident}/stop", response_class=HTMLResponse)
def stop(request: Request, ident: str, session: SessionDep, user: UserDep) -> Response:
    found = deployments.stop_deployment(session, user, ident)
    session.commit()
    _wake(request)
    return RedirectResponse(with_notice(f"/deployments/{found.id}", "deployment-stopped"), 303)


@router.post("/deployments/{ident}/start", response_class=HTMLResponse)
def start(request: Request, ident: str, session: SessionDep, user: UserDep) -> Response:
    found = deployments.start_deployment(session, user, ident)
    session.commit()
    _wake(request)
    return RedirectResponse(with_notice(f"/deployments/{found.id}", "deployment-started"), 303)


@router.post("/deployments/{ident}/launch", response_class=HTMLResponse)
def launch_on_deployment(
    request: Request,
    ident: str,
    session: SessionDep,
    user: UserDep,
    processing: Annotated[str, Form()],
    hours: Annotated[float, Form()] = 24,
    reference_version_id: Annotated[str, Form()] = "",
) -> Response:
    """A processing on the last `hours` of the deployment's predictions."""
    found = deployments.get_deployment(session, user, ident)
    if not 0 < hours <= 24 * 365:
        raise InvalidInput("hours must be between 0 and 8760")
    end = utcnow()
    reference = int(reference_version_id) if is_number(reference_version_id) else None
    job = jobs.launch(
        session, user, processing=processing, target_version_id=reference,
        target_deployment_id=found.id, window=jobs.Window(end - timedelta(hours=hours), end),
        executor=getattr(request.app.state, "executor", None),
    )  # fmt: skip
    session.commit()
    scheduler = request.app.state.scheduler
    if scheduler is not None:
        scheduler.wake()
    return RedirectResponse(with_notice(f"/jobs/{job.id}", "launched"), 303)


def _wake(request: Request) -> None:
    request.app.state.gate.forget()
    supervisor = request.app.state.supervisor
    if supervisor is not None:
        supervisor.wake()


# -- review -------------------------------------------------------------------------------------


@router.get("/deployments/{ident}/review", response_class=HTMLResponse)
def review_page(
    request: Request,
    ident: str,
    session: SessionDep,
    user: UserDep,
    status: str = "unreviewed",
    before: int | None = None,
) -> HTMLResponse:
    """Sampled predictions (those whose image was kept), newest first, by review status."""
    found = deployments.get_deployment(session, user, ident)
    flt = predictions.PredictionFilter(review_status=status or None, sampled=True)
    listed = predictions.list_predictions(
        session, user, found.id, PageRequest(before, REVIEW_PAGE, newest_first=True), flt
    )
    titles = versions.recent_version_titles(session, user)
    return page(request, "deployment_review.html", deployment=found, items=listed.items,
                older=listed.next, status=status, version_titles=titles,
                statuses=predictions.REVIEW_STATUSES)  # fmt: skip


@router.post("/deployments/{ident}/review", response_class=HTMLResponse)
async def review(request: Request, ident: str, session: SessionDep, user: UserDep) -> Response:
    """Accept or reject the ticked predictions, or send them to a version (Fix: to correct
    them there, in the asset editor)."""
    form = await request.form()
    ids = [int(v) for v in form.getlist("ids") if is_number(str(v))]
    action = str(form.get("action", ""))
    back = f"/deployments/{ident}/review?status={form.get('status', 'unreviewed')}"
    if not ids:
        raise InvalidInput("tick at least one prediction")
    if action in ("accepted", "rejected", "unreviewed"):
        predictions.review_predictions(session, user, ident, ids, action)
        return RedirectResponse(with_notice(back, "predictions-reviewed"), 303)
    if action == "send":
        raw = str(form.get("version_id", ""))
        if not is_number(raw):
            raise InvalidInput("choose the dataset version to send them to")
        sent = predictions.send_to_version(
            session, request.app.state.store, user, ident, ids, int(raw),
            max_pixels=request.app.state.settings.max_image_pixels,
        )  # fmt: skip
        target = f"/assets/{sent[0].id}" if len(sent) == 1 else f"/versions/{raw}"
        return RedirectResponse(with_notice(target, "predictions-sent"), 303)
    raise DarkroomError(f"unknown action {action!r}")


@router.get("/ui/predictions/{prediction_id}/image", response_class=Response)
def prediction_image(
    request: Request, prediction_id: int, session: SessionDep, user: UserDep, store: StoreDep
) -> Response:
    found = predictions.get_prediction(session, user, prediction_id)
    if found.image_sha256 is None:
        raise InvalidInput(f"prediction {prediction_id}'s image was not sampled")
    blob = session.get(Blob, found.image_sha256)
    return blob_response(request, store, found.image_sha256, blob.mime if blob else "image/jpeg")
