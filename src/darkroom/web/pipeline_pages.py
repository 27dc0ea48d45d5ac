"""Pipelines and webhooks in the browser: the pipelines, a pipeline's steps and runs, a pipeline
run drawn as a graph whose steps show their live status and link to their jobs and the
versions they made (re-run from the failed step, cancel), launching a pipeline from a version's
Process dialog, and the webhooks with each one's delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from darkroom.domain import pipelines, versions, webhooks
from darkroom.domain.pagination import PageRequest
from darkroom.domain.pipelines import INPUT, StepState
from darkroom.http.deps import SessionDep, commit_and_wake
from darkroom.http.schemas import DbInt
from darkroom.web.auth import UserDep
from darkroom.web.graphs import BOX_H, BOX_W, Graph, Node, layered
from darkroom.web.notices import with_notice
from darkroom.web.render import page

__all__ = ["router"]

router = APIRouter()


def step_graph(steps: list[StepState], input_title: str, input_href: str | None) -> Graph:
    """The input version first, each step one column right of its input."""
    nodes = [Node(INPUT, input_title, "input", input_href, subtitle="input version")]
    for s in steps:
        href = f"/jobs/{s.job.id}" if s.job else None
        nodes.append(Node(s.name, f"{s.name}: {s.processing}", s.status, href, parent=s.input))
    return layered(nodes)


@router.get("/pipelines", response_class=HTMLResponse)
def pipelines_page(request: Request, session: SessionDep, user: UserDep) -> HTMLResponse:
    found = pipelines.list_pipelines(session, user, PageRequest(limit=1000)).items
    rows = [(p, pipelines.current_revision(session, p.id)) for p in found]
    return page(request, "pipelines.html", rows=rows)


@router.get("/pipelines/{ident}", response_class=HTMLResponse)
def pipeline_page(request: Request, ident: str, session: SessionDep, user: UserDep) -> HTMLResponse:
    pipeline = pipelines.get_pipeline(session, user, ident)
    runs = pipelines.list_pipeline_runs(session, user, pipeline.id,
                                        PageRequest(limit=50, newest_first=True)).items  # fmt: skip
    return page(
        request, "pipeline.html", pipeline=pipeline,
        revision=pipelines.current_revision(session, pipeline.id),
        runs=[(r, pipelines.step_states(session, r)[0]) for r in runs],
        version_titles=versions.recent_version_titles(session, user),
        titles=versions.version_titles(session, user,
                                       {r.input_version_id for r in runs if r.input_version_id}),
    )  # fmt: skip


@router.post("/pipelines/{ident}/launch", response_class=HTMLResponse)
def launch(
    request: Request,
    ident: str,
    session: SessionDep,
    user: UserDep,
    version_id: Annotated[int, Form()],
) -> Response:
    run = pipelines.launch_pipeline(session, user, ident, version_id)
    commit_and_wake(request, session)
    return RedirectResponse(with_notice(f"/pipeline-runs/{run.id}", "pipeline-launched"), 303)


@router.post("/versions/{version_id}/pipelines/launch", response_class=HTMLResponse)
def launch_on_version(
    request: Request,
    version_id: DbInt,
    session: SessionDep,
    user: UserDep,
    pipeline: Annotated[str, Form()],
) -> Response:
    """The Process dialog's pipeline choice."""
    run = pipelines.launch_pipeline(session, user, pipeline, version_id)
    commit_and_wake(request, session)
    return RedirectResponse(with_notice(f"/pipeline-runs/{run.id}", "pipeline-launched"), 303)


@router.get("/pipeline-runs/{run_id}", response_class=HTMLResponse)
def pipeline_run_page(
    request: Request, run_id: DbInt, session: SessionDep, user: UserDep
) -> HTMLResponse:
    """The live part (`#pipeline-live`) refreshes itself every 2 s while a step is active."""
    run = pipelines.get_pipeline_run(session, user, run_id)
    status, steps = pipelines.step_states(session, run)
    titles = dict(versions.recent_version_titles(session, user))
    input_title = titles.get(run.input_version_id or 0, f"version {run.input_version_id}")
    href = f"/versions/{run.input_version_id}" if run.input_version_id else None
    return page(request, "pipeline_run.html", run=run, status=status, steps=steps,
                graph=step_graph(steps, f"input: {input_title}", href), box_w=BOX_W, box_h=BOX_H,
                titles=titles)  # fmt: skip


@router.post("/pipeline-runs/{run_id}/rerun", response_class=HTMLResponse)
def rerun(request: Request, run_id: DbInt, session: SessionDep, user: UserDep) -> Response:
    pipelines.rerun_pipeline_run(session, user, run_id)
    commit_and_wake(request, session)
    return RedirectResponse(with_notice(f"/pipeline-runs/{run_id}", "pipeline-rerun"), 303)


@router.post("/pipeline-runs/{run_id}/cancel", response_class=HTMLResponse)
def cancel(request: Request, run_id: DbInt, session: SessionDep, user: UserDep) -> Response:
    pipelines.cancel_pipeline_run(session, user, run_id)
    commit_and_wake(request, session)
    return RedirectResponse(with_notice(f"/pipeline-runs/{run_id}", "pipeline-cancel"), 303)


# -- webhooks ------------------------------------------------------------------------------------


@router.get("/webhooks", response_class=HTMLResponse)
def webhooks_page(request: Request, session: SessionDep, user: UserDep) -> HTMLResponse:
    found = webhooks.list_webhooks(session, user, PageRequest(limit=1000)).items
    return page(request, "webhooks.html", hooks=found, events=webhooks.EVENTS, secret=None)


@router.post("/webhooks", response_class=HTMLResponse)
async def create_webhook(request: Request, session: SessionDep, user: UserDep) -> Response:
    """The secret is shown on the answer, once."""
    form = await request.form()
    chosen = [str(e) for e in form.getlist("events")] or None
    made = webhooks.create_webhook(
        session, user, str(form.get("url", "")).strip(), chosen,
        allow_private=request.app.state.settings.webhooks_allow_private,
    )  # fmt: skip
    session.commit()
    found = webhooks.list_webhooks(session, user, PageRequest(limit=1000)).items
    return page(request, "webhooks.html", hooks=found, events=webhooks.EVENTS,
                secret=made.secret, created=made, status_code=201)  # fmt: skip


@router.get("/webhooks/{webhook_id}", response_class=HTMLResponse)
def webhook_page(
    request: Request, webhook_id: DbInt, session: SessionDep, user: UserDep
) -> HTMLResponse:
    """Its delivery log, newest first; refreshes itself every 2 s."""
    hook = webhooks.get_webhook(session, user, webhook_id)
    log = webhooks.list_deliveries(session, user, hook.id,
                                   PageRequest(limit=100, newest_first=True)).items  # fmt: skip
    return page(request, "webhook.html", hook=hook, deliveries=log)
