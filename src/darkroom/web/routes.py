"""The web UI's pages. Thin like the API routes: read through `darkroom.domain`, render Jinja2.

Authentication is the API token, kept in an http-only cookie after sign-in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sse_starlette import EventSourceResponse

from darkroom.api.deps import SessionDep, StoreDep, commit_and_wake
from darkroom.api.routes.runs import run_log_events
from darkroom.db.models import ACTIVE_STATUSES, utcnow
from darkroom.domain import (
    annotations,
    assets,
    datasets,
    jobs,
    labels,
    logs,
    model_registry,
    processings,
    versions,
)
from darkroom.domain.accounts import Principal, authenticate
from darkroom.domain.pagination import PageRequest
from darkroom.domain.thumbnails import thumbnail
from darkroom.errors import DarkroomError, Unauthorized
from darkroom.web import forms

__all__ = ["COOKIE", "router"]

COOKIE = "darkroom_token"
GRID_PAGE = 48
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


class SignInRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def current_principal(request: Request, session: SessionDep) -> Principal:
    try:
        principal = authenticate(session, request.cookies.get(COOKIE))
    except Unauthorized:
        raise SignInRequired(str(request.url.path)) from None
    if principal.is_run:
        raise SignInRequired(str(request.url.path))
    return principal


UserDep = Annotated[Principal, Depends(current_principal)]
router = APIRouter(include_in_schema=False)


def page(request: Request, name: str, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context)


def duration(run: Any) -> str:
    if run.started_at is None:
        return ""
    end = run.finished_at or utcnow()
    seconds = (end - run.started_at).total_seconds()
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


templates.env.globals["duration"] = duration
templates.env.globals["ACTIVE"] = [str(s) for s in ACTIVE_STATUSES]


@router.get("/", response_class=HTMLResponse)
def home() -> Response:
    return RedirectResponse("/datasets", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/datasets") -> HTMLResponse:
    return page(request, "login.html", next=next, error=None)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    session: SessionDep,
    token: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/datasets",
) -> Response:
    try:
        authenticate(session, token.strip())
    except Unauthorized:
        return page(request, "login.html", next=next, error="That token is not valid.")
    target = next if next.startswith("/") and not next.startswith("//") else "/datasets"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", max_age=30 * 24 * 3600)  # fmt: skip
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("/datasets", response_class=HTMLResponse)
def datasets_page(request: Request, session: SessionDep, user: UserDep) -> HTMLResponse:
    items = datasets.list_datasets(session, user, PageRequest(limit=1000)).items
    return page(request, "datasets.html", datasets=items)


@router.get("/datasets/{dataset_id}", response_class=HTMLResponse)
def dataset_page(
    request: Request, dataset_id: int, session: SessionDep, user: UserDep
) -> HTMLResponse:
    ds = datasets.get_dataset(session, user, dataset_id)
    items = versions.list_versions(session, user, dataset_id, PageRequest(limit=1000)).items
    names = {v.id: v.name for v in items}
    return page(request, "dataset.html", dataset=ds, versions=items, names=names)


def _asset_filter(label: str | None, tag: str | None, annotated: str | None) -> assets.AssetFilter:
    """The grid's filters from query strings ("" means any; annotated is "yes" or "no")."""
    return assets.AssetFilter(
        label or None, tag or None, {"yes": True, "no": False}.get(annotated or "")
    )


def _grid(session: Any, user: Principal, version_id: int, after: int | None,
          flt: assets.AssetFilter, version_labels: list[Any]) -> dict[str, Any]:  # fmt: skip
    result = assets.list_assets(session, user, version_id, PageRequest(after, GRID_PAGE), flt)
    label_map = {x.id: x for x in version_labels}
    shapes = annotations.shapes_of_assets(session, [a.id for a in result.items])
    return {"assets": result.items, "next": result.next, "shapes": shapes, "label_map": label_map}


@router.get("/versions/{version_id}", response_class=HTMLResponse)
def version_page(
    request: Request,
    version_id: int,
    session: SessionDep,
    user: UserDep,
    label: str | None = None,
    tag: str | None = None,
    annotated: str | None = None,
) -> HTMLResponse:
    version = versions.get_version(session, user, version_id)
    version_labels = labels.list_labels(session, user, version_id)
    flt = _asset_filter(label, tag, annotated)
    try:
        grid = _grid(session, user, version_id, None, flt, version_labels)
        error = None
    except DarkroomError as exc:
        grid, error = {"assets": [], "next": None, "shapes": {}, "label_map": {}}, exc.message
    stats = versions.version_stats(session, user, version_id)
    version_jobs = jobs.list_jobs(
        session, user, PageRequest(limit=1000), jobs.JobFilter(version_id=version_id)
    ).items
    query = request.url.query
    return page(request, "version.html", version=version, stats=stats, error=error,
                filters={"label": label or "", "tag": tag or "", "annotated": annotated or ""},
                labels=version_labels, jobs=version_jobs,
                query=query, **grid)  # fmt: skip


@router.get("/versions/{version_id}/grid", response_class=HTMLResponse)
def version_grid(
    request: Request,
    version_id: int,
    session: SessionDep,
    user: UserDep,
    after: int,
    label: str | None = None,
    tag: str | None = None,
    annotated: str | None = None,
) -> HTMLResponse:
    """The next tiles, for the grid's "load more" (htmx)."""
    flt = _asset_filter(label, tag, annotated)
    grid = _grid(
        session, user, version_id, after, flt, labels.list_labels(session, user, version_id)
    )
    return page(request, "_tiles.html", version_id=version_id, query=request.url.query, **grid)


@router.get("/ui/assets/{asset_id}/thumbnail")
def asset_thumbnail(asset_id: int, session: SessionDep, user: UserDep, store: StoreDep) -> Response:
    asset = assets.get_asset(session, user, asset_id)
    return Response(thumbnail(store, asset.blob_sha256, 256), media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=31536000, immutable"})  # fmt: skip


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(
    request: Request,
    session: SessionDep,
    user: UserDep,
    status: str | None = None,
    processing: str | None = None,
) -> HTMLResponse:
    flt = jobs.JobFilter(None, status or None, processing or None)
    try:
        items, error = jobs.list_jobs(session, user, PageRequest(limit=1000), flt).items, None
    except DarkroomError as exc:
        items, error = [], exc.message
    procs = processings.list_processings(session, user, PageRequest(limit=1000)).items
    return page(request, "jobs.html", jobs=list(reversed(items)), error=error, processings=procs,
                filters={"status": status or "", "processing": processing or ""})  # fmt: skip


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(
    request: Request,
    job_id: int,
    session: SessionDep,
    user: UserDep,
    run: Annotated[int | None, Query()] = None,
) -> HTMLResponse:
    job = jobs.get_job(session, user, job_id)
    selected = next((r for r in job.runs if r.id == run), job.runs[-1])
    lines = logs.list_lines(session, user, selected.id, 0, 5000)
    trace_at = next((i for i, x in enumerate(lines) if x.text.startswith("Traceback")), None)
    active = next((r for r in job.runs if r.status in ACTIVE_STATUSES), None)
    return page(request, "job.html", job=job, selected=selected, lines=lines, trace_at=trace_at,
                active=active)  # fmt: skip


@router.get("/ui/runs/{run_id}/events")
def run_events(request: Request, run_id: int, session: SessionDep, user: UserDep,
               after: int = 0) -> EventSourceResponse:  # fmt: skip
    jobs.get_run(session, user, run_id)
    last = request.headers.get("last-event-id", "")
    if last.isdigit():
        after = max(after, int(last))
    return EventSourceResponse(run_log_events(request, user, run_id, after))


@router.post("/ui/jobs/{job_id}/rerun")
def rerun(request: Request, job_id: int, session: SessionDep, user: UserDep) -> Response:
    new_run = jobs.rerun(session, user, job_id)
    commit_and_wake(request, session)
    return RedirectResponse(f"/jobs/{job_id}?run={new_run.id}", status_code=303)


@router.post("/ui/runs/{run_id}/cancel")
def cancel(run_id: int, session: SessionDep, user: UserDep) -> Response:
    run = jobs.cancel_run(session, user, run_id)
    return RedirectResponse(f"/jobs/{run.job_id}?run={run.id}", status_code=303)


@router.get("/processings", response_class=HTMLResponse)
def processings_page(request: Request, session: SessionDep, user: UserDep) -> HTMLResponse:
    items = processings.list_processings(session, user, PageRequest(limit=1000)).items
    latest = {p.id: processings.latest_revision(session, p.id) for p in items}
    return page(request, "processings.html", processings=items, latest=latest)


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request, session: SessionDep, user: UserDep) -> HTMLResponse:
    items = model_registry.list_models(session, user, PageRequest(limit=1000)).items
    versions_of = {m.id: model_registry.list_model_versions(session, user, m.id) for m in items}
    return page(request, "models.html", models=items, versions_of=versions_of)


def _process_context(
    session: Any, user: Principal, version_id: int, processing: str | None, model: str | None,
    model_version: str | None,
) -> dict[str, Any]:  # fmt: skip
    version = versions.get_version(session, user, version_id)
    procs = processings.list_processings(session, user, PageRequest(limit=1000)).items
    groups: dict[str, list[Any]] = {}
    for p in sorted(procs, key=lambda p: (p.type, p.name)):
        groups.setdefault(p.type, []).append(p)
    chosen = processings.get_processing(session, user, processing) if processing else None
    models = model_registry.list_models(session, user, PageRequest(limit=1000)).items
    mv = (
        model_registry.get_model_version(session, user, int(model_version))
        if model_version
        else None
    )
    chosen_model = model_registry.get_model(session, user, int(model)) if model else None
    if mv is not None and chosen_model is None:
        chosen_model = mv.model
    model_versions = (
        model_registry.list_model_versions(session, user, chosen_model.id) if chosen_model else []
    )
    version_labels = {x.name.lower() for x in labels.list_labels(session, user, version_id)}
    schema = processings.latest_revision(session, chosen.id).parameters_schema if chosen else {}
    return {
        "version": version, "groups": list(groups.items()), "chosen": chosen, "models": models,
        "model": chosen_model, "model_version": mv, "model_versions": model_versions,
        "version_label_names": version_labels, "schema": schema,
    }  # fmt: skip


@router.get("/versions/{version_id}/process", response_class=HTMLResponse)
def process_form(
    request: Request,
    version_id: int,
    session: SessionDep,
    user: UserDep,
    processing: str | None = None,
    model: str | None = None,
    model_version: str | None = None,
) -> HTMLResponse:
    """Choose a processing, a model and version if it needs one, then its parameters."""
    ctx = _process_context(session, user, version_id, processing or None, model or None,
                           model_version or None)  # fmt: skip
    fields = forms.fields_of(ctx["schema"])
    return page(request, "process.html", fields=fields, field_errors={}, error=None, **ctx)


async def form_fields(request: Request) -> dict[str, str]:
    """The submitted form as strings (its fields come from a schema, not from a signature)."""
    return {k: str(v) for k, v in (await request.form()).items()}


@router.post("/versions/{version_id}/process", response_class=HTMLResponse)
def launch_from_form(
    request: Request,
    version_id: int,
    session: SessionDep,
    user: UserDep,
    form: Annotated[dict[str, str], Depends(form_fields)],
) -> Response:
    """Launches with the submitted parameters, or shows the form again with errors by field."""
    ctx = _process_context(session, user, version_id, form.get("processing"), None,
                           form.get("model_version") or None)  # fmt: skip
    values, field_errors = forms.read_values(ctx["schema"], form)
    error = None
    if not field_errors:
        try:
            model_version_id = int(form["model_version"]) if form.get("model_version") else None
            job = jobs.launch(
                session, user, processing=form["processing"], target_version_id=version_id,
                model_version_id=model_version_id, parameters=values,
                executor=getattr(request.app.state, "executor", None),
            )  # fmt: skip
            commit_and_wake(request, session)
            return RedirectResponse(f"/jobs/{job.id}", status_code=303)
        except DarkroomError as exc:
            session.rollback()
            error = exc.message
            loc = exc.details.get("loc") if isinstance(exc.details, dict) else None
            if loc and loc[0] == "parameters" and len(loc) > 1:
                field_errors[str(loc[1])] = exc.message.split(": ", 1)[-1]
    fields = forms.fields_of(ctx["schema"], {**values, **{k: form.get(k) for k in field_errors}})
    return page(request, "process.html", fields=fields, field_errors=field_errors,
                error=error or "Some values are not valid.", **ctx)  # fmt: skip
