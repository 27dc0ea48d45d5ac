"""Pipelines: definitions in revisions, runs whose steps are ordinary jobs."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from sqlalchemy.orm import Session

from darkroom.db.models import Pipeline, PipelineRun
from darkroom.domain import pipelines
from darkroom.http.deps import PageDep, PrincipalDep, SessionDep, commit_and_wake
from darkroom.http.schemas import (
    DbInt,
    Page,
    PipelineCreate,
    PipelineDefinition,
    PipelineLaunch,
    PipelinePublic,
    PipelineRevisionPublic,
    PipelineRunPublic,
)

router = APIRouter(tags=["pipelines"])


def _pipeline(session: Session, pipeline: Pipeline) -> PipelinePublic:
    revision = pipelines.current_revision(session, pipeline.id)
    return PipelinePublic(id=pipeline.id, name=pipeline.name, description=pipeline.description,
                          created_at=pipeline.created_at,
                          revision=PipelineRevisionPublic.of(revision))  # fmt: skip


def _run(session: Session, run: PipelineRun) -> PipelineRunPublic:
    overall, steps = pipelines.step_states(session, run)
    return PipelineRunPublic.of(run, overall, steps)


@router.post("/pipelines", response_model=PipelinePublic, status_code=status.HTTP_201_CREATED)
def create_pipeline(
    body: PipelineCreate, session: SessionDep, principal: PrincipalDep
) -> PipelinePublic:
    """A pipeline and its revision 1. The definition is checked whole: an unknown processing,
    a cycle, bad parameters or a missing model is a 422 naming the step (`loc`)."""
    found = pipelines.create_pipeline(session, principal, body.name, {"steps": body.steps},
                                      body.description)  # fmt: skip
    return _pipeline(session, found)


@router.get("/pipelines", response_model=Page[PipelinePublic])
def list_pipelines(
    session: SessionDep, principal: PrincipalDep, page: PageDep
) -> Page[PipelinePublic]:
    result = pipelines.list_pipelines(session, principal, page)
    return Page[PipelinePublic](items=[_pipeline(session, p) for p in result.items],
                                next=result.next)  # fmt: skip


@router.get("/pipelines/{pipeline_id}", response_model=PipelinePublic)
def get_pipeline(pipeline_id: str, session: SessionDep, principal: PrincipalDep) -> PipelinePublic:
    """By id or name, with its newest revision."""
    return _pipeline(session, pipelines.get_pipeline(session, principal, pipeline_id))


@router.post("/pipelines/{pipeline_id}/revisions", response_model=PipelineRevisionPublic,
             status_code=status.HTTP_201_CREATED)  # fmt: skip
def add_revision(
    pipeline_id: str, body: PipelineDefinition, session: SessionDep, principal: PrincipalDep
) -> PipelineRevisionPublic:
    """Revision n+1; runs already launched keep theirs. The same steps as the newest: that one."""
    revision = pipelines.new_revision(session, principal, pipeline_id, {"steps": body.steps})
    return PipelineRevisionPublic.of(revision)


@router.get("/pipelines/{pipeline_id}/revisions", response_model=list[PipelineRevisionPublic])
def list_revisions(
    pipeline_id: str, session: SessionDep, principal: PrincipalDep
) -> list[PipelineRevisionPublic]:
    return [PipelineRevisionPublic.of(r)
            for r in pipelines.list_revisions(session, principal, pipeline_id)]  # fmt: skip


@router.post("/pipelines/{pipeline_id}/launch", response_model=PipelineRunPublic,
             status_code=status.HTTP_201_CREATED)  # fmt: skip
def launch_pipeline(
    pipeline_id: str,
    body: PipelineLaunch,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> PipelineRunPublic:
    """A pipeline run on the version: the steps reading it are pending jobs now."""
    run = pipelines.launch_pipeline(session, principal, pipeline_id, body.input_version_id,
                                    body.revision)  # fmt: skip
    answer = _run(session, run)  # what the launch made, before the scheduler moves it
    commit_and_wake(request, session)
    return answer


@router.get("/pipelines/{pipeline_id}/runs", response_model=Page[PipelineRunPublic])
def list_pipeline_runs(
    pipeline_id: str, session: SessionDep, principal: PrincipalDep, page: PageDep
) -> Page[PipelineRunPublic]:
    result = pipelines.list_pipeline_runs(session, principal, pipeline_id, page)
    return Page[PipelineRunPublic](items=[_run(session, r) for r in result.items],
                                   next=result.next)  # fmt: skip


@router.get("/pipeline-runs/{run_id}", response_model=PipelineRunPublic)
def get_pipeline_run(
    run_id: DbInt, session: SessionDep, principal: PrincipalDep
) -> PipelineRunPublic:
    return _run(session, pipelines.get_pipeline_run(session, principal, run_id))


@router.post("/pipeline-runs/{run_id}/rerun", response_model=PipelineRunPublic)
def rerun_pipeline_run(
    run_id: DbInt, request: Request, session: SessionDep, principal: PrincipalDep
) -> PipelineRunPublic:
    """Re-runs the failed and cancelled steps with their processings' current revisions; the
    succeeded steps keep their outputs. 409 while a step is active."""
    pipelines.rerun_pipeline_run(session, principal, run_id)
    answer = _run(session, pipelines.get_pipeline_run(session, principal, run_id))
    commit_and_wake(request, session)
    return answer


@router.post("/pipeline-runs/{run_id}/cancel", response_model=PipelineRunPublic)
def cancel_pipeline_run(
    run_id: DbInt, request: Request, session: SessionDep, principal: PrincipalDep
) -> PipelineRunPublic:
    """Cancels every active step; no other step starts."""
    run = pipelines.cancel_pipeline_run(session, principal, run_id)
    answer = _run(session, run)
    commit_and_wake(request, session)
    return answer
