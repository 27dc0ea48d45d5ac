"""Jobs and their runs, as users see them: launch, re-run, cancel, history.

The state machine (DESIGN.md §2): a run is created `pending`; the scheduler moves it to
`running` and then to `succeeded`, `failed` or `cancelled` (see `darkroom.domain.runs`). At most
one run of a job is pending or running, enforced by a partial unique index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from darkroom.db.models import (
    ACTIVE_STATUSES,
    DatasetVersion,
    Job,
    Label,
    LogLine,
    Organization,
    Processing,
    ProcessingRevision,
    ProcessingType,
    Run,
    RunStatus,
    TargetKind,
    utcnow,
)
from darkroom.domain.accounts import Principal
from darkroom.domain.deployments import get_deployment
from darkroom.domain.evaluations import check_ground_truth
from darkroom.domain.model_registry import get_model_version
from darkroom.domain.pagination import Page, PageRequest, paginate
from darkroom.domain.parameters import resolve_parameters
from darkroom.domain.processings import get_processing, get_revision, latest_revision
from darkroom.domain.resources import asked_gpus
from darkroom.domain.versions import get_version
from darkroom.domain.workers import gpu_workers
from darkroom.errors import Conflict, Forbidden, InvalidInput, NotFound
from darkroom.inference.labels import map_labels
from darkroom.sources import Source

__all__ = [
    "JobFilter",
    "Window",
    "cancel_run",
    "get_job",
    "get_run",
    "launch",
    "list_jobs",
    "next_job_number",
    "output_versions_of",
    "queue_place",
    "rerun",
    "runs_by_id",
]


class SourceChecker(Protocol):
    def check(self, source: Source) -> None: ...


@dataclass(frozen=True, slots=True)
class JobFilter:
    version_id: int | None = None  # the dataset version it ran on (or its samples, reference)
    status: str | None = None  # the latest run's
    processing: str | None = None  # id or name
    model_version_id: int | None = None
    deployment_id: int | None = None
    # Only jobs whose processing targets this kind (a version's Jobs tab: its own jobs, not the
    # conversions that took sample images from it).
    target_kind: str | None = None


# Processings whose model's labels must meet the version's (else nothing could be written or
# measured): 422 at launch.
LABELLED_BY_MODEL = (ProcessingType.pre_annotation, ProcessingType.model_evaluation)
# The window a job on a deployment reads when the launch names none: the last day.
DEFAULT_WINDOW = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime | None = None
    end: datetime | None = None


def launch(
    session: Session,
    principal: Principal,
    *,
    processing: int | str,
    target_version_id: int | None,
    model_version_id: int | None = None,
    parameters: dict[str, Any] | None = None,
    executor: SourceChecker | None = None,
    revision_number: int | None = None,
    target_deployment_id: int | str | None = None,
    window: Window | None = None,
    numbered: bool = True,
) -> Job:
    """Creates the job with resolved parameters and its run #1, pending.

    A processing on datasets targets `target_version_id`; one on models (target
    `model_version`, e.g. `model-conversion`) targets `model_version_id`, and may be given a
    dataset version too, as its sample images; one on deployments (target `deployment`)
    targets `target_deployment_id` and reads its predictions within `window` (the last day
    by default), with a dataset version as its reference if given. It runs the newest regular
    revision, or `revision_number` (which may be a development revision: `darkroom processing
    run-local`). With an `executor`, a source it cannot run is refused now rather than failing
    later. The job takes its organization's next job number unless it is not `numbered` (a
    preview).
    """
    proc = get_processing(session, principal, processing)
    on_models = proc.target == TargetKind.model_version
    on_deployment = proc.target == TargetKind.deployment
    deployment_id, start, end = _deployment_target(
        session, principal, proc.name, on_deployment, target_deployment_id, window
    )
    if target_version_id is None and not (on_models or on_deployment):
        raise InvalidInput(
            f"processing {proc.name!r} runs on a dataset version: give target_version_id",
            details={"loc": ["target_version_id"]},
        )
    version = (
        None if target_version_id is None else get_version(session, principal, target_version_id)
    )
    if revision_number is None:
        revision = latest_revision(session, proc.id)
    else:
        revision = get_revision(session, proc.id, revision_number)
    if (proc.needs_model or on_models) and model_version_id is None:
        raise InvalidInput(
            f"processing {proc.name!r} needs a model version: give model_version_id",
            code="model_required",
            details={"loc": ["model_version_id"]},
        )
    if model_version_id is not None:
        model_version = get_model_version(session, principal, model_version_id)
        if not (proc.needs_model or on_models):
            raise InvalidInput(
                f"processing {proc.name!r} takes no model", details={"loc": ["model_version_id"]}
            )
        if proc.model_families and model_version.family not in proc.model_families:
            raise InvalidInput(
                f"processing {proc.name!r} runs {' or '.join(proc.model_families)} models; "
                f"model version {model_version.id} is {model_version.family}",
                code="wrong_model_family",
                details={"loc": ["model_version_id"], "family": model_version.family},
            )
    resolved = resolve_parameters(revision.parameters_schema, parameters)
    if version is not None and model_version_id is not None and proc.type in LABELLED_BY_MODEL:
        _check_label_overlap(session, version.id, model_version.labels, resolved)
    if version is not None and proc.type == ProcessingType.model_evaluation:
        check_ground_truth(session, version.id)
    if executor is not None:
        executor.check(revision.source)
    job = Job(
        organization_id=principal.organization_id,
        processing_id=proc.id,
        target_version_id=None if version is None else version.id,
        model_version_id=model_version_id,
        target_deployment_id=deployment_id,
        window_start=start,
        window_end=end,
        parameters=resolved,
        created_by=principal.user_id,
        number=next_job_number(session, principal.organization_id) if numbered else None,
    )
    session.add(job)
    session.flush()
    run = Run(job_id=job.id, attempt=1, revision_id=revision.id, status=RunStatus.pending,
              parameters=resolved)  # fmt: skip
    session.add(run)
    session.flush()
    say_why_it_waits(session, run, revision)
    session.refresh(job, ["runs"])
    return job


def next_job_number(session: Session, organization_id: int) -> int:
    """Takes the organization's next job number. One UPDATE … RETURNING: the row stays locked
    to the end of the transaction, so two launches at once cannot take the same number."""
    return session.execute(
        update(Organization)
        .where(Organization.id == organization_id)
        .values(jobs_numbered=Organization.jobs_numbered + 1)
        .returning(Organization.jobs_numbered)
    ).scalar_one()


def say_why_it_waits(
    session: Session, run: Run, revision: ProcessingRevision, lease_s: float = 60.0
) -> str | None:
    """Logs, as a new run's first line, why no worker can take it yet (the GPUs it asks for,
    which no worker seen has); None when one can."""
    gpus = asked_gpus(revision.resources)
    if not gpus:
        return None
    seen, able = gpu_workers(session, gpus, 2 * lease_s)
    if able:
        return None
    text = (f"waiting: it asks for {gpus} GPU(s) and none of the {seen} worker(s) seen "
            f"has {gpus}; it starts when a worker with {gpus} GPU(s) joins")  # fmt: skip
    session.add(LogLine(run_id=run.id, seq=1, stream="system", text=text))
    session.flush()
    return text


def _deployment_target(
    session: Session,
    principal: Principal,
    name: str,
    on_deployment: bool,
    deployment_ref: int | str | None,
    window: Window | None,
) -> tuple[int | None, datetime | None, datetime | None]:
    """The deployment and the window [start, end) a job on one reads. The end is fixed at
    launch (now, when not given), so every re-run reads the same predictions."""
    if not on_deployment:
        if deployment_ref is not None or window is not None:
            raise InvalidInput(f"processing {name!r} does not run on a deployment",
                               details={"loc": ["target_deployment_id"]})  # fmt: skip
        return None, None, None
    if deployment_ref is None:
        raise InvalidInput(f"processing {name!r} runs on a deployment: give target_deployment_id",
                           details={"loc": ["target_deployment_id"]})  # fmt: skip
    deployment = get_deployment(session, principal, deployment_ref)
    window = window or Window()
    end = window.end or utcnow()
    start = end - DEFAULT_WINDOW if window == Window() else window.start
    if start is not None and start >= end:
        raise InvalidInput("the window's start must be before its end",
                           details={"loc": ["window_start"]})  # fmt: skip
    return deployment.id, start, end


def _check_label_overlap(
    session: Session, version_id: int, model_labels: list[str], parameters: dict[str, Any]
) -> None:
    version_labels = list(session.scalars(select(Label.name).where(Label.version_id == version_id)))
    if not map_labels(model_labels, version_labels, parameters.get("label_mapping")):
        raise InvalidInput(
            "no model label maps to a label of the version: model labels "
            f"{', '.join(model_labels)}; version labels {', '.join(version_labels) or '(none)'}. "
            "Add labels to the version or give a label_mapping.",
            code="no_label_overlap",
            details={"model_labels": model_labels, "version_labels": version_labels},
        )


def get_job(session: Session, principal: Principal, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.organization_id != principal.organization_id:
        raise NotFound.of("job", job_id)
    if principal.is_run and job.id != principal.job_id:
        raise Forbidden(f"this run's token cannot reach job {job_id}")
    return job


def get_run(session: Session, principal: Principal, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound.of("run", run_id)
    try:
        get_job(session, principal, run.job_id)
    except NotFound:
        raise NotFound.of("run", run_id) from None
    except Forbidden:
        raise Forbidden(f"this run's token cannot reach run {run_id}") from None
    return run


@dataclass(frozen=True, slots=True)
class QueuePlace:
    """Where a pending run stands: runs queued before it, and runs running now (counts over the
    whole queue, which every organization's runs share)."""

    ahead: int
    running: int
    gpus: int = 0  # the GPUs it asks for
    workers: int = 0  # workers seen in the last lease
    gpu_workers: int = 0  # of them, those with as many GPUs as it asks (free or not)


def queue_place(session: Session, run: Run, lease_s: float = 60.0) -> QueuePlace:
    ahead = session.scalar(select(func.count(Run.id)).where(
        Run.status == RunStatus.pending, Run.queued_at < run.queued_at))  # fmt: skip
    running = session.scalar(select(func.count(Run.id)).where(Run.status == RunStatus.running))
    place = QueuePlace(int(ahead or 0), int(running or 0))
    gpus = asked_gpus(run.revision.resources)
    if gpus:
        seen, able = gpu_workers(session, gpus, 2 * lease_s)
        place = QueuePlace(place.ahead, place.running, gpus, seen, able)
    return place


def runs_by_id(session: Session, principal: Principal, run_ids: set[int]) -> dict[int, Run]:
    """Many runs of the caller's organization in one query (pages name shapes' authors)."""
    if not run_ids:
        return {}
    stmt = (
        select(Run)
        .join(Job, Job.id == Run.job_id)
        .where(Run.id.in_(run_ids), Job.organization_id == principal.organization_id)
    )
    return {run.id: run for run in session.scalars(stmt)}


def output_versions_of(session: Session, principal: Principal, job_id: int) -> list[DatasetVersion]:
    """The versions a job's runs produced, oldest first (a job page links them; a split into
    versions makes three, every re-run of an augmentation one more)."""
    get_job(session, principal, job_id)
    stmt = select(DatasetVersion).where(DatasetVersion.produced_by_job_id == job_id)
    return list(session.scalars(stmt.order_by(DatasetVersion.id)))


def list_jobs(
    session: Session, principal: Principal, page: PageRequest, flt: JobFilter | None = None
) -> Page[Job]:
    """The jobs history, oldest first (keyset on id)."""
    flt = flt or JobFilter()
    stmt = select(Job).where(Job.organization_id == principal.organization_id)
    if flt.version_id is not None:
        stmt = stmt.where(Job.target_version_id == flt.version_id)
    if flt.model_version_id is not None:
        stmt = stmt.where(Job.model_version_id == flt.model_version_id)
    if flt.deployment_id is not None:
        stmt = stmt.where(Job.target_deployment_id == flt.deployment_id)
    if flt.processing is not None:
        stmt = stmt.where(
            Job.processing_id == get_processing(session, principal, flt.processing).id
        )
    if flt.target_kind is not None:
        stmt = stmt.join(Processing, Processing.id == Job.processing_id).where(
            Processing.target == flt.target_kind
        )
    if flt.status is not None:
        if flt.status not in RunStatus.__members__:
            raise InvalidInput(
                f"status must be one of {', '.join(RunStatus)}", details={"loc": ["status"]}
            )
        later = aliased(Run)
        latest_with_status = select(Run.job_id).where(
            Run.status == flt.status,
            ~exists().where(later.job_id == Run.job_id, later.attempt > Run.attempt),
        )
        stmt = stmt.where(Job.id.in_(latest_with_status))
    return paginate(session, stmt, Job.id, page)


def rerun(
    session: Session,
    principal: Principal,
    job_id: int,
    parameters: dict[str, Any] | None = None,
    *,
    resume: bool = False,
) -> Run:
    """Attempt n+1 with the processing's current revision; 409 while a run is active.

    With `resume`, the run skips the assets the job's earlier runs finished (it keeps their
    output): how a run that failed halfway is completed after the processing is fixed."""
    job = get_job(session, principal, job_id)
    active = [r for r in job.runs if r.status in ACTIVE_STATUSES]
    if active:
        raise _active(job, active[0])
    # a job launched on a development revision re-runs the newest one, development or not
    revision = latest_revision(session, job.processing_id, dev=job.runs[-1].revision.is_dev)
    if parameters is not None:
        job.parameters = resolve_parameters(revision.parameters_schema, parameters)
    else:  # the schema may have changed: the job's parameters must still fit it
        job.parameters = resolve_parameters(revision.parameters_schema, job.parameters)
    attempt = max(r.attempt for r in job.runs) + 1
    run = Run(
        job_id=job.id,
        attempt=attempt,
        revision_id=revision.id,
        status=RunStatus.pending,
        resume=resume,
        parameters=job.parameters,
    )
    try:
        with session.begin_nested():
            session.add(run)
    except IntegrityError:  # a concurrent re-run won the race
        session.expire(job, ["runs"])
        raise _active(job, None) from None
    say_why_it_waits(session, run, revision)
    session.refresh(job, ["runs"])
    return run


def _active(job: Job, run: Run | None) -> Conflict:
    what = f"run {run.id} is {run.status}" if run else "another run is active"
    return Conflict(
        f"job {job.id} cannot be re-run: {what}; wait for it or cancel it",
        code="run_active",
        details={"run_id": run.id if run else None},
    )


def cancel_run(session: Session, principal: Principal, run_id: int) -> Run:
    """Cancels a pending run at once; asks the scheduler to stop a running one."""
    run = get_run(session, principal, run_id)
    if run.status == RunStatus.pending:
        from darkroom.domain.webhooks import on_runs_ended

        run.status = RunStatus.cancelled
        run.finished_at = utcnow()
        session.flush()
        on_runs_ended(session, [run.id])
    elif run.status == RunStatus.running:
        run.cancel_requested_at = run.cancel_requested_at or utcnow()
    else:
        raise Conflict(f"run {run.id} already {run.status}", code="run_finished")
    session.flush()
    return run
