"""The jobs history, a job's page with its runs side by side, live logs, re-run and cancel."""

from __future__ import annotations

import difflib
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sse_starlette import EventSourceResponse

from darkroom.db.models import ACTIVE_STATUSES, TargetKind, utcnow
from darkroom.domain import (
    annotations,
    deployments,
    jobs,
    logs,
    model_registry,
    processings,
    usage,
    versions,
)
from darkroom.domain.accounts import user_names
from darkroom.domain.pagination import PageRequest
from darkroom.errors import DarkroomError, NotFound
from darkroom.http.deps import SessionDep, commit_and_wake
from darkroom.http.events import run_log_events
from darkroom.http.schemas import DbInt
from darkroom.sources import InlineSource, Source
from darkroom.text import is_number
from darkroom.web.auth import UserDep
from darkroom.web.notices import with_notice
from darkroom.web.render import page, progress_of

__all__ = ["router"]

JOBS_PAGE = 100
LOG_LINES_SHOWN = 5000
router = APIRouter()


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(
    request: Request,
    session: SessionDep,
    user: UserDep,
    status: str | None = None,
    processing: str | None = None,
    before: DbInt | None = None,
) -> HTMLResponse:
    """Every job on the organization's versions, newest first, by pages of JOBS_PAGE."""
    flt = jobs.JobFilter(None, status or None, processing or None)
    try:
        result = jobs.list_jobs(session, user, PageRequest(before, JOBS_PAGE, True), flt)
        items, older, error = result.items, result.next, None
    except DarkroomError as exc:
        items, older, error = [], None, exc.message
    procs = processings.list_processings(session, user, PageRequest(limit=1000)).items
    titles = versions.version_titles(session, user, {j.target_version_id for j in items
                                                     if j.target_version_id})  # fmt: skip
    on_models = {j.model_version_id for j in items if j.model_version_id
                 and j.processing.target == TargetKind.model_version}  # fmt: skip
    return page(request, "jobs.html", jobs=items, error=error, processings=procs, older=older,
                titles=titles, model_titles=model_registry.model_version_titles(session, user,
                                                                                on_models),
                users=user_names(session, user),
                filters={"status": status or "", "processing": processing or ""})  # fmt: skip


USAGE_PERIODS = (1, 7, 30, 90)


@router.get("/usage", response_class=HTMLResponse)
def usage_page(
    request: Request, session: SessionDep, user: UserDep, days: Annotated[int, Query()] = 30
) -> HTMLResponse:
    """The organization's running time over the last `days`, by processing and by user."""
    days = days if days in USAGE_PERIODS else 30
    used = usage.usage_since(session, user, utcnow() - timedelta(days=days))
    return page(request, "usage.html", used=used, days=days, periods=USAGE_PERIODS)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(
    request: Request,
    job_id: DbInt,
    session: SessionDep,
    user: UserDep,
    run: Annotated[DbInt | None, Query()] = None,
) -> HTMLResponse:
    job = jobs.get_job(session, user, job_id)
    selected = next((r for r in job.runs if r.id == run), job.runs[-1])
    lines = logs.list_lines(session, user, selected.id, 0, LOG_LINES_SHOWN)
    trace_at = next((i for i, x in enumerate(lines) if x.text.startswith("Traceback")), None)
    active = next((r for r in job.runs if r.status in ACTIVE_STATUSES), None)
    target = versions.version_titles(session, user, {job.target_version_id or 0})
    deployment = None
    if job.target_deployment_id is not None:
        deployment = deployments.get_deployment(session, user, job.target_deployment_id)
    lease_s = request.app.state.settings.run_lease_s
    waiting = jobs.queue_place(session, selected, lease_s) if selected.status == "pending" else None
    model_title = model_registry.model_version_titles(session, user, {job.model_version_id or 0})
    return page(request, "job.html", job=job, selected=selected, lines=lines, trace_at=trace_at,
                active=active, progress=progress_of(selected), target_title=target,
                deployment=deployment, waiting=waiting, model_title=model_title,
                output_versions=jobs.output_versions_of(session, user, job_id),
                output_models=model_registry.made_by_job(session, user, job_id),
                users=user_names(session, user),
                job_shapes=annotations.job_shape_count(session, user, job_id))  # fmt: skip


@router.get("/jobs/{job_id}/compare", response_class=HTMLResponse)
def compare_runs(
    request: Request,
    job_id: DbInt,
    session: SessionDep,
    user: UserDep,
    a: Annotated[DbInt | None, Query()] = None,
    b: Annotated[DbInt | None, Query()] = None,
) -> HTMLResponse:
    """Two runs of a job side by side: status, revision, parameters (what differs marked),
    the code's changes between their revisions, and both logs. By default the last two."""
    job = jobs.get_job(session, user, job_id)
    by_id = {r.id: r for r in job.runs}
    default = [r.id for r in job.runs[-2:]]
    left = by_id.get(a) if a is not None else by_id.get(default[0])
    right = by_id.get(b) if b is not None else by_id.get(default[-1])
    if left is None or right is None:
        raise NotFound(f"job {job_id} has no run {a if left is None else b}")
    columns = []
    for run in (left, right):
        params = run.parameters if run.parameters is not None else job.parameters
        lines = logs.list_lines(session, user, run.id, 0, COMPARE_LINES)
        columns.append({"run": run, "parameters": params, "lines": lines})
    keys = sorted(set(columns[0]["parameters"]) | set(columns[1]["parameters"]))
    changed = {
        k for k in keys if columns[0]["parameters"].get(k) != columns[1]["parameters"].get(k)
    }
    code_diff = _code_diff(left.revision.source, right.revision.source,
                           left.revision.number, right.revision.number)  # fmt: skip
    return page(request, "compare.html", job=job, columns=columns, keys=keys, changed=changed,
                code_diff=code_diff, left=left, right=right)  # fmt: skip


COMPARE_LINES = 2000


def _code_diff(a: Source, b: Source, number_a: int, number_b: int) -> list[str]:
    """A unified diff of two revisions' inline code; nothing for other sources or no change."""
    if not isinstance(a, InlineSource) or not isinstance(b, InlineSource) or a == b:
        return []
    return list(difflib.unified_diff(
        a.code.splitlines(), b.code.splitlines(),
        f"revision {number_a}", f"revision {number_b}", lineterm="",
    ))  # fmt: skip


@router.get("/ui/runs/{run_id}/progress", response_class=HTMLResponse)
def run_progress(
    request: Request, run_id: DbInt, session: SessionDep, user: UserDep
) -> HTMLResponse:
    """The progress bar's fragment; it polls itself while the run is active."""
    selected = jobs.get_run(session, user, run_id)
    return page(request, "_progress.html", selected=selected, progress=progress_of(selected))


@router.get("/ui/runs/{run_id}/events")
def run_events(request: Request, run_id: DbInt, session: SessionDep, user: UserDep,
               after: DbInt = 0) -> EventSourceResponse:  # fmt: skip
    jobs.get_run(session, user, run_id)
    last = request.headers.get("last-event-id", "")
    if is_number(last):
        after = max(after, int(last))
    return EventSourceResponse(run_log_events(request, user, run_id, after, states=True))


@router.post("/ui/jobs/{job_id}/rerun")
def rerun(
    request: Request,
    job_id: DbInt,
    session: SessionDep,
    user: UserDep,
    resume: Annotated[bool, Form()] = False,
) -> Response:
    """Re-run; `resume` (the job page's Resume button) skips what earlier runs finished."""
    new_run = jobs.rerun(session, user, job_id, resume=resume)
    commit_and_wake(request, session)
    notice = "resumed" if resume else "rerun"
    return RedirectResponse(with_notice(f"/jobs/{job_id}?run={new_run.id}", notice), 303)


@router.post("/ui/jobs/{job_id}/remove-annotations")
def remove_annotations(job_id: DbInt, session: SessionDep, user: UserDep) -> Response:
    """The job page's "Remove this job's annotations" (it asks first, with the count)."""
    annotations.remove_job_annotations(session, user, job_id)
    return RedirectResponse(with_notice(f"/jobs/{job_id}", "annotations-removed"), 303)


@router.post("/ui/runs/{run_id}/cancel")
def cancel(run_id: DbInt, session: SessionDep, user: UserDep) -> Response:
    run = jobs.cancel_run(session, user, run_id)
    return RedirectResponse(with_notice(f"/jobs/{run.job_id}?run={run.id}", "cancel"), 303)
