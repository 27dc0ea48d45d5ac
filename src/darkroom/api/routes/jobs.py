from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from darkroom.domain import annotations, jobs
from darkroom.http.deps import PageDep, PrincipalDep, SessionDep, commit_and_wake
from darkroom.http.schemas import DbInt, JobCreate, JobPublic, Page, RerunRequest, RunPublic

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("", response_model=Page[JobPublic])
def list_jobs(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    version_id: DbInt | None = None,
    status: Annotated[str | None, Query(description="the latest run's status")] = None,
    processing: Annotated[str | None, Query(description="processing id or name")] = None,
    model_version_id: DbInt | None = None,
    deployment_id: DbInt | None = None,
) -> Page[JobPublic]:
    """The history of jobs, oldest first."""
    flt = jobs.JobFilter(version_id, status, processing, model_version_id, deployment_id)
    result = jobs.list_jobs(session, principal, page, flt)
    return Page[JobPublic](items=[JobPublic.of(j) for j in result.items], next=result.next)


@router.post("", response_model=JobPublic, status_code=status.HTTP_201_CREATED)
def launch_job(
    body: JobCreate, request: Request, session: SessionDep, principal: PrincipalDep
) -> JobPublic:
    """Launches a processing on a dataset version, on a model version (a processing whose
    target is `model_version`) or on a deployment's predictions in a window (target
    `deployment`): the job and its run #1, pending."""
    window = None
    if body.window_start is not None or body.window_end is not None:
        window = jobs.Window(body.window_start, body.window_end)
    job = jobs.launch(
        session, principal, processing=body.processing, target_version_id=body.target_version_id,
        model_version_id=body.model_version_id, parameters=body.parameters,
        executor=getattr(request.app.state, "executor", None), revision_number=body.revision,
        target_deployment_id=body.target_deployment_id, window=window,
    )  # fmt: skip
    answer = JobPublic.of(job)  # what the launch made, before the scheduler moves it
    commit_and_wake(request, session)
    return answer


@router.get("/{job_id}", response_model=JobPublic)
def get_job(job_id: DbInt, session: SessionDep, principal: PrincipalDep) -> JobPublic:
    return JobPublic.of(jobs.get_job(session, principal, job_id))


@router.post("/{job_id}/rerun", response_model=RunPublic, status_code=status.HTTP_201_CREATED)
def rerun_job(
    job_id: DbInt,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    body: RerunRequest | None = None,
) -> RunPublic:
    """The next attempt with the processing's current revision; 409 while a run is active."""
    run = jobs.rerun(
        session,
        principal,
        job_id,
        body.parameters if body else None,
        resume=body.resume if body else False,
    )
    answer = RunPublic.of(run)
    commit_and_wake(request, session)
    return answer


@router.delete("/{job_id}/annotations")
def remove_job_annotations(
    job_id: DbInt, session: SessionDep, principal: PrincipalDep
) -> dict[str, int]:
    """Removes what the job's runs annotated on its version (409 while a run is active)."""
    return {"deleted_shapes": annotations.remove_job_annotations(session, principal, job_id)}
