"""Pipelines: processings that chain, each step an ordinary job of the one engine.

A pipeline's definition lives in numbered revisions that are never edited; it is checked whole
at creation (every step's processing, parameters, model and input), so a bad one is refused
with the step and field named. A pipeline run launches the steps whose input is the pipeline's
input version at once; when a step's run succeeds, in the same transaction, every step whose
input steps have all succeeded is launched on its input (`after_run_succeeded`): a step's
output is the newest version its job produced, or its target version when it worked in place.
Nothing else moves a pipeline run: its status and its steps' are derived from their jobs' runs.
A failed step stops what depends on it; `rerun` re-runs the failed and cancelled steps (with
their processing's current revision) and keeps what succeeded; `cancel` stops every active step
and starts no other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from darkroom.db.models import (
    ACTIVE_STATUSES,
    DatasetVersion,
    Job,
    Pipeline,
    PipelineRevision,
    PipelineRun,
    RunStatus,
    TargetKind,
    utcnow,
)
from darkroom.domain import jobs as jobs_domain
from darkroom.domain.accounts import Principal
from darkroom.domain.model_registry import get_model_version
from darkroom.domain.pagination import Page, PageRequest, paginate
from darkroom.domain.parameters import resolve_parameters
from darkroom.domain.processings import get_processing, latest_revision
from darkroom.domain.versions import get_version
from darkroom.errors import Conflict, DarkroomError, InvalidInput, NotFound
from darkroom.text import check_name, is_number

__all__ = [
    "INPUT",
    "StepState",
    "after_run_succeeded",
    "cancel_pipeline_run",
    "create_pipeline",
    "get_pipeline",
    "get_pipeline_run",
    "launch_pipeline",
    "list_pipeline_runs",
    "list_pipelines",
    "list_revisions",
    "new_revision",
    "rerun_pipeline_run",
    "step_states",
]

INPUT = "input"  # a step's input when it reads the pipeline run's input version
STEP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
MAX_STEPS = 50


def _bad(message: str, *loc: Any, code: str = "invalid_pipeline") -> InvalidInput:
    return InvalidInput(message, code=code, details={"loc": ["steps", *loc]})


def check_definition(session: Session, principal: Principal, given: Any) -> dict[str, Any]:
    """The definition as stored: `{"steps": [{name, processing, parameters, model_version_id,
    input}]}`, each step checked, parameters resolved against the processing's current schema,
    and the steps in an order where each comes after its input."""
    steps = given.get("steps") if isinstance(given, dict) else None
    if not isinstance(steps, list) or not steps:
        raise _bad("a pipeline needs a list of steps")
    if len(steps) > MAX_STEPS:
        raise _bad(f"a pipeline has at most {MAX_STEPS} steps")
    checked: list[dict[str, Any]] = []
    names: set[str] = set()
    for i, step in enumerate(steps):
        if not isinstance(step, dict):
            raise _bad(f"step {i + 1} is not an object", i)
        unknown = set(step) - {"name", "processing", "parameters", "model_version_id", "input"}
        if unknown:
            raise _bad(f"step {i + 1} has unknown fields: {', '.join(sorted(unknown))}", i,
                       sorted(unknown)[0])  # fmt: skip
        name = step.get("name")
        if not isinstance(name, str) or not STEP_NAME.match(name):
            raise _bad(f"step {i + 1}: name must be lower-case letters, digits, '-' or '_'",
                       i, "name")  # fmt: skip
        if name == INPUT or name in names:
            raise _bad(f"step {name!r}: the name is {'reserved' if name == INPUT else 'taken'}",
                       i, "name")  # fmt: skip
        names.add(name)
        checked.append(_check_step(session, principal, i, name, step))
    return {"steps": _ordered(checked)}


def _check_step(
    session: Session, principal: Principal, i: int, name: str, step: dict[str, Any]
) -> dict[str, Any]:
    ref = step.get("processing")
    if not isinstance(ref, str | int) or ref == "":
        raise _bad(f"step {name!r}: give the processing it runs", i, "processing")
    try:
        proc = get_processing(session, principal, ref)
    except NotFound:
        raise _bad(f"step {name!r}: no processing {ref!r}", i, "processing",
                   code="unknown_processing") from None  # fmt: skip
    if proc.target != TargetKind.dataset_version:
        raise _bad(f"step {name!r}: {proc.name!r} runs on {proc.target}s; pipeline steps run "
                   "on dataset versions", i, "processing")  # fmt: skip
    parameters = step.get("parameters") or {}
    try:
        resolved = resolve_parameters(latest_revision(session, proc.id).parameters_schema,
                                      parameters)  # fmt: skip
    except InvalidInput as exc:
        loc = (exc.details or {}).get("loc") or ["parameters"]
        raise _bad(f"step {name!r}: {exc.message}", i, *loc, code=exc.code) from None
    model_version_id = step.get("model_version_id")
    if proc.needs_model and model_version_id is None:
        raise _bad(f"step {name!r}: {proc.name!r} needs a model version: give model_version_id",
                   i, "model_version_id", code="model_required")  # fmt: skip
    if model_version_id is not None:
        if not proc.needs_model:
            raise _bad(f"step {name!r}: {proc.name!r} takes no model", i, "model_version_id")
        if not isinstance(model_version_id, int):
            raise _bad(f"step {name!r}: model_version_id is a number", i, "model_version_id")
        try:
            get_model_version(session, principal, model_version_id)
        except NotFound as exc:
            raise _bad(f"step {name!r}: {exc.message}", i, "model_version_id") from None
    source = step.get("input", INPUT)
    if not isinstance(source, str) or not source:
        raise _bad(f"step {name!r}: input is {INPUT!r} or an earlier step's name", i, "input")
    return {"name": name, "processing": proc.name, "processing_id": proc.id,
            "parameters": resolved, "model_version_id": model_version_id,
            "input": source, "index": i}  # fmt: skip


def _ordered(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Steps after their input; an unknown input or a cycle is refused naming the step."""
    by_name = {s["name"]: s for s in steps}
    for step in steps:
        if step["input"] != INPUT and step["input"] not in by_name:
            raise _bad(f"step {step['name']!r}: input {step['input']!r} is neither {INPUT!r} "
                       "nor a step of this pipeline", step["index"], "input")  # fmt: skip
    done: list[dict[str, Any]] = []
    placed: set[str] = {INPUT}
    while len(done) < len(steps):
        ready = [s for s in steps if s["name"] not in placed and s["input"] in placed]
        if not ready:
            stuck = next(s for s in steps if s["name"] not in placed)
            raise _bad(f"step {stuck['name']!r}: its inputs form a cycle", stuck["index"],
                       "input", code="pipeline_cycle")  # fmt: skip
        for step in ready:
            placed.add(step["name"])
            done.append({k: v for k, v in step.items() if k != "index"})
    return done


# -- pipelines ---------------------------------------------------------------------------------


def create_pipeline(
    session: Session, principal: Principal, name: str, definition: Any, description: str = ""
) -> Pipeline:
    check_name(name, "pipeline")
    checked = check_definition(session, principal, definition)
    pipeline = Pipeline(organization_id=principal.organization_id, name=name,
                        description=description, created_by=principal.user_id)  # fmt: skip
    try:
        with session.begin_nested():
            session.add(pipeline)
    except IntegrityError:
        raise Conflict(f"a pipeline named {name!r} exists; add a revision to it",
                       code="name_taken") from None  # fmt: skip
    session.add(PipelineRevision(pipeline_id=pipeline.id, number=1, definition=checked,
                                 created_by=principal.user_id))  # fmt: skip
    session.flush()
    return pipeline


def new_revision(
    session: Session, principal: Principal, ident: int | str, definition: Any
) -> PipelineRevision:
    """Revision n+1 (the runs already launched keep theirs); the same definition as the
    newest gives the newest back."""
    pipeline = get_pipeline(session, principal, ident)
    checked = check_definition(session, principal, definition)
    newest = current_revision(session, pipeline.id)
    if newest.definition == checked:
        return newest
    revision = PipelineRevision(pipeline_id=pipeline.id, number=newest.number + 1,
                                definition=checked, created_by=principal.user_id)  # fmt: skip
    session.add(revision)
    session.flush()
    return revision


def get_pipeline(session: Session, principal: Principal, ident: int | str) -> Pipeline:
    stmt = select(Pipeline).where(Pipeline.organization_id == principal.organization_id)
    if isinstance(ident, int) or is_number(str(ident)):
        found = session.scalar(stmt.where(Pipeline.id == int(ident)))
    else:
        found = session.scalar(stmt.where(Pipeline.name == ident))
    if found is None:
        raise NotFound.of("pipeline", ident)
    return found


def current_revision(session: Session, pipeline_id: int) -> PipelineRevision:
    stmt = select(PipelineRevision).where(PipelineRevision.pipeline_id == pipeline_id)
    found = session.scalar(stmt.order_by(PipelineRevision.number.desc()).limit(1))
    assert found is not None  # a pipeline is created with its first revision
    return found


def list_pipelines(session: Session, principal: Principal, page: PageRequest) -> Page[Pipeline]:
    stmt = select(Pipeline).where(Pipeline.organization_id == principal.organization_id)
    return paginate(session, stmt, Pipeline.id, page)


def list_revisions(
    session: Session, principal: Principal, ident: int | str
) -> list[PipelineRevision]:
    pipeline = get_pipeline(session, principal, ident)
    stmt = select(PipelineRevision).where(PipelineRevision.pipeline_id == pipeline.id)
    return list(session.scalars(stmt.order_by(PipelineRevision.number)))


# -- runs ----------------------------------------------------------------------------------------


def launch_pipeline(
    session: Session,
    principal: Principal,
    ident: int | str,
    input_version_id: int,
    revision_number: int | None = None,
) -> PipelineRun:
    """A run of the newest revision (or `revision_number`) on the version: the steps that read
    the input start now, the others as their inputs succeed."""
    pipeline = get_pipeline(session, principal, ident)
    version = get_version(session, principal, input_version_id)
    if revision_number is None:
        revision = current_revision(session, pipeline.id)
    else:
        revision = session.scalar(select(PipelineRevision).where(
            PipelineRevision.pipeline_id == pipeline.id,
            PipelineRevision.number == revision_number))  # fmt: skip
        if revision is None:
            raise NotFound(f"pipeline {pipeline.name!r} has no revision {revision_number}")
    run = PipelineRun(organization_id=principal.organization_id, pipeline_id=pipeline.id,
                      revision_id=revision.id, input_version_id=version.id,
                      created_by=principal.user_id)  # fmt: skip
    session.add(run)
    session.flush()
    _launch_ready(session, run)
    return run


def get_pipeline_run(session: Session, principal: Principal, run_id: int) -> PipelineRun:
    found = session.get(PipelineRun, run_id)
    if found is None or found.organization_id != principal.organization_id:
        raise NotFound.of("pipeline run", run_id)
    return found


def list_pipeline_runs(
    session: Session, principal: Principal, ident: int | str, page: PageRequest
) -> Page[PipelineRun]:
    pipeline = get_pipeline(session, principal, ident)
    stmt = select(PipelineRun).where(PipelineRun.pipeline_id == pipeline.id)
    return paginate(session, stmt, PipelineRun.id, page)


def step_jobs(session: Session, run_id: int) -> dict[str, Job]:
    stmt = select(Job).where(Job.pipeline_run_id == run_id)
    return {job.pipeline_step or "": job for job in session.scalars(stmt)}


@dataclass
class StepState:
    """A step as a pipeline run's page and API show it."""

    name: str
    processing: str
    input: str
    status: str  # waiting | pending | running | succeeded | failed | cancelled | blocked
    job: Job | None = None
    output_version_ids: list[int] = field(default_factory=list)


def step_states(session: Session, run: PipelineRun) -> tuple[str, list[StepState]]:
    """The run's status and each step's, derived from the steps' jobs' newest runs. A step
    that has no job yet is `waiting` while its input may still succeed, `blocked` when it
    failed, was cancelled, or succeeded but the step could not start (the input step's log
    says why)."""
    jobs = step_jobs(session, run.id)
    states: dict[str, StepState] = {}
    for step in run.revision.definition["steps"]:
        job = jobs.get(step["name"])
        if job is not None:
            status = job.runs[-1].status
            outputs = [v.id for v in _produced(session, job.id)]
        else:
            # Its launch follows its input's success in the same transaction: an input that
            # succeeded (or no input step) and still no job means it could not start.
            upstream = states.get(step["input"])
            waits = upstream is not None and upstream.status in ("waiting", *ACTIVE_STATUSES)
            status = "waiting" if waits and not run.cancelled_at else "blocked"
            outputs = []
        states[step["name"]] = StepState(step["name"], step["processing"], step["input"],
                                         str(status), job, outputs)  # fmt: skip
    statuses = [s.status for s in states.values()]
    if any(s in ACTIVE_STATUSES for s in statuses):
        overall = "running"
    elif all(s == RunStatus.succeeded for s in statuses):
        overall = "succeeded"
    elif RunStatus.failed in statuses or (not run.cancelled_at and "blocked" in statuses):
        overall = "failed"
    elif RunStatus.cancelled in statuses or run.cancelled_at:
        overall = "cancelled"
    else:
        overall = "running"  # a step is about to be launched
    return overall, list(states.values())


def _produced(session: Session, job_id: int) -> list[DatasetVersion]:
    stmt = select(DatasetVersion).where(DatasetVersion.produced_by_job_id == job_id)
    return list(session.scalars(stmt.order_by(DatasetVersion.id)))


def _output_of(session: Session, job: Job) -> int | None:
    produced = _produced(session, job.id)
    return produced[-1].id if produced else job.target_version_id


def _launch_ready(session: Session, run: PipelineRun) -> list[Job]:
    """Launches every step not launched yet whose input is ready; a step another transaction
    launched first (two steps ending at once) is left to it."""
    if run.cancelled_at is not None:
        return []
    jobs = step_jobs(session, run.id)
    principal = Principal(run.organization_id, run.created_by)
    launched = []
    for step in run.revision.definition["steps"]:
        if step["name"] in jobs:
            continue
        if step["input"] == INPUT:
            target = run.input_version_id
        else:
            upstream = jobs.get(step["input"])
            if upstream is None or upstream.runs[-1].status != RunStatus.succeeded:
                continue
            target = _output_of(session, upstream)
        if target is None:
            continue
        try:
            with session.begin_nested():
                job = jobs_domain.launch(
                    session, principal, processing=step["processing_id"],
                    target_version_id=target, model_version_id=step["model_version_id"],
                    parameters=step["parameters"],
                )  # fmt: skip
                job.pipeline_run_id, job.pipeline_step = run.id, step["name"]
                session.flush()
        except IntegrityError:
            continue
        jobs[step["name"]] = job
        launched.append(job)
    return launched


def after_run_succeeded(session: Session, run_id: int) -> list[Job]:
    """Called in the transaction that marks a run succeeded: the steps that waited for it.
    A step that cannot be launched any more (its processing's schema changed, a model gone)
    is logged on the step it waited for and stays blocked; the run's end is not undone."""
    from darkroom.db.models import Run

    run = session.get(Run, run_id)
    if run is None:
        return []
    job = session.get(Job, run.job_id)
    if job is None or job.pipeline_run_id is None:
        return []
    pipeline_run = session.get(PipelineRun, job.pipeline_run_id)
    if pipeline_run is None:
        return []
    try:
        return _launch_ready(session, pipeline_run)
    except DarkroomError as exc:
        from darkroom.domain import logs

        text = f"pipeline: the next step cannot start: {exc.message}"
        logs.append_next(session, run_id, [(utcnow(), "system", text)])
        return []


def rerun_pipeline_run(session: Session, principal: Principal, run_id: int) -> list[Job]:
    """Re-runs the failed and cancelled steps; the succeeded ones keep their outputs and the
    steps after the re-run ones start as these succeed. 409 while a step is active."""
    run = get_pipeline_run(session, principal, run_id)
    _, states = step_states(session, run)
    if any(s.status in ACTIVE_STATUSES for s in states):
        raise Conflict(f"pipeline run {run.id} has active steps; wait for them or cancel it",
                       code="run_active")  # fmt: skip
    ended = (RunStatus.failed, RunStatus.cancelled)
    again = [s.job for s in states if s.job is not None and s.status in ended]
    if not again and all(s.status == RunStatus.succeeded for s in states):
        raise Conflict(f"pipeline run {run.id} succeeded: nothing to re-run", code="run_finished")
    run.cancelled_at = None
    for job in again:
        assert job is not None
        jobs_domain.rerun(session, principal, job.id)
    session.flush()
    return [j for j in again if j is not None] + _launch_ready(session, run)


def cancel_pipeline_run(session: Session, principal: Principal, run_id: int) -> PipelineRun:
    """Cancels every active step; no other step starts."""
    run = get_pipeline_run(session, principal, run_id)
    run.cancelled_at = run.cancelled_at or utcnow()
    for job in step_jobs(session, run.id).values():
        newest = job.runs[-1]
        if newest.status in ACTIVE_STATUSES:
            jobs_domain.cancel_run(session, principal, newest.id)
    session.flush()
    return run
