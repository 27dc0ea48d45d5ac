"""What a run calls with its own token (the runtime SDK, or a Ray node shipping its output):
its context, inputs, progress, outputs. The token scopes each call to the run's own job."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Response, UploadFile, status

from darkroom.domain import (
    annotations,
    deployments,
    evaluations,
    idempotency,
    jobs,
    logs,
    metrics,
    model_registry,
    predictions,
    runs,
    versions,
)
from darkroom.domain.accounts import Principal
from darkroom.domain.pagination import PageRequest
from darkroom.errors import Forbidden, InvalidInput, NotFound
from darkroom.http.deps import (
    IdempotencyKey,
    RunOrUserDep,
    SessionDep,
    SettingsDep,
    StoreDep,
)
from darkroom.http.schemas import (
    DbInt,
    EvaluationPublic,
    MetricsWrite,
    ModelVersionPublic,
    OutputVersionCreate,
    Page,
    ProgressReport,
    RunOutput,
    RunPublic,
    VersionPublic,
)
from darkroom.http.uploads import labels_field
from darkroom.runtime.contract import (
    AnnotationBatch,
    AnnotationsAdded,
    Deployment,
    EvaluationMetrics,
    Limits,
    Prediction,
    ProcessingInfo,
    RunContext,
    Window,
)
from darkroom.sources import source_doc

router = APIRouter(prefix="/runs", tags=["runtime"])


@router.get("/{run_id}/context", response_model=RunContext)
def get_run_context(
    run_id: DbInt, session: SessionDep, principal: RunOrUserDep, settings: SettingsDep
) -> RunContext:
    run = jobs.get_run(session, principal, run_id)
    job = run.job
    if job.target_version_id is None:
        target = None
    else:
        target = versions.get_version(session, principal, job.target_version_id)
    return RunContext(
        run_id=run.id,
        job_id=job.id,
        attempt=run.attempt,
        processing=ProcessingInfo(
            id=job.processing.id,
            name=job.processing.name,
            type=job.processing.type,
            revision=run.revision.number,
            source=source_doc(run.revision.source),
        ),
        parameters=run.parameters if run.parameters is not None else job.parameters,
        target_version=None if target is None else VersionPublic.model_validate(target),
        model_version=(
            ModelVersionPublic.of(
                model_registry.get_model_version(session, principal, job.model_version_id)
            )
            if job.model_version_id is not None
            else None
        ),
        deployment=_deployment_of(session, principal, job),
        window=(
            Window(start=job.window_start, end=job.window_end)
            if job.window_end is not None
            else None
        ),
        limits=Limits(max_request_bytes=settings.max_upload_bytes),
        resume=run.resume,
    )


def _deployment_of(session: Any, principal: Principal, job: Any) -> Deployment | None:
    if job.target_deployment_id is None:
        return None
    found = deployments.get_deployment(session, principal, job.target_deployment_id)
    return Deployment(id=found.id, name=found.name, status=found.status,
                      revision=found.revision.number,
                      model_version_id=found.revision.model_version_id,
                      settings=found.revision.settings)  # fmt: skip


@router.get("/{run_id}/predictions", response_model=Page[Prediction])
def list_run_predictions(
    run_id: DbInt,
    session: SessionDep,
    principal: RunOrUserDep,
    after: Annotated[DbInt | None, Query(description="id of the last prediction seen")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> Page[Prediction]:
    """The predictions a run on a deployment reads, oldest first: its job's deployment,
    made within its job's window."""
    job = jobs.get_run(session, principal, run_id).job
    if job.target_deployment_id is None:
        raise NotFound(f"run {run_id}'s job is not on a deployment")
    flt = predictions.PredictionFilter(since=job.window_start, until=job.window_end)
    page = predictions.list_predictions(session, principal, job.target_deployment_id,
                                        PageRequest(after, limit), flt)  # fmt: skip
    items = [Prediction.model_validate(p, from_attributes=True) for p in page.items]
    return Page[Prediction](items=items, next=page.next)


@router.post("/{run_id}/metrics")
def record_run_metrics(
    run_id: DbInt, body: MetricsWrite, session: SessionDep, principal: RunOrUserDep
) -> dict[str, Any]:
    """The run's figures by name (its own token only); a name sent again is replaced."""
    return metrics.record_metrics(session, principal, run_id, body.metrics)


@router.get("/{run_id}/metrics")
def get_run_metrics(run_id: DbInt, session: SessionDep, principal: RunOrUserDep) -> dict[str, Any]:
    return metrics.run_metrics(session, principal, run_id)


@router.get("/{run_id}/bundle", response_class=Response)
def get_run_bundle(
    run_id: DbInt, session: SessionDep, principal: RunOrUserDep, store: StoreDep
) -> Response:
    """The bundle (canonical .tar.gz) the run executes; its run token may read it."""
    run = jobs.get_run(session, principal, run_id)
    sha = run.revision.bundle_sha256
    if sha is None:
        raise NotFound(f"run {run_id} runs a {run.revision.source.kind} source, no bundle")
    return Response(store.read(sha), media_type="application/gzip",
                    headers={"ETag": f'"{sha}"'})  # fmt: skip


@router.post("/{run_id}/output")
def ship_run_output(
    run_id: DbInt,
    body: RunOutput,
    session: SessionDep,
    principal: RunOrUserDep,
    key: IdempotencyKey = None,
) -> object:
    """A running run's own output, from the node that runs it (Ray): the run's token only.
    Answers the log's last seq; a retried batch (same Idempotency-Key) is not appended twice."""

    def write() -> dict[str, Any]:
        lines = [(x.ts, x.stream, x.text) for x in body.lines]
        return {"last_seq": logs.record_run_output(session, principal, run_id, lines)}

    return idempotency.once(session, principal, key, write)


@router.post("/{run_id}/progress", response_model=RunPublic)
def report_run_progress(
    run_id: DbInt, body: ProgressReport, session: SessionDep, principal: RunOrUserDep
) -> RunPublic:
    return RunPublic.of(runs.report_progress(session, principal, run_id, body.done, body.total))


@router.post("/{run_id}/annotations", response_model=AnnotationsAdded, status_code=201)
def add_run_annotations(
    run_id: DbInt,
    body: AnnotationBatch,
    session: SessionDep,
    principal: RunOrUserDep,
    key: IdempotencyKey = None,
) -> object:
    """Shapes on many assets at once, authored by the run (its token's); all or nothing.

    The items' assets and `done` are marked finished by the run (what `resume` skips)."""
    jobs.get_run(session, principal, run_id)

    def write() -> dict[str, Any]:
        items = [(i.asset_id, i.shapes) for i in body.items]
        added = annotations.add_many(session, principal, items, done=body.done)
        return AnnotationsAdded(shapes_added=added).model_dump(mode="json")

    return idempotency.once(session, principal, key, write)


@router.get("/{run_id}/finished-assets", response_model=list[int])
def finished_assets(run_id: DbInt, session: SessionDep, principal: RunOrUserDep) -> list[int]:
    """Ids of the assets the job's earlier runs finished (a resumed run skips them)."""
    return annotations.finished_by_earlier_runs(session, principal, run_id)


@router.post("/{run_id}/clear-previous-annotations")
def clear_previous_run_annotations(
    run_id: DbInt,
    session: SessionDep,
    principal: RunOrUserDep,
    earlier_jobs: Annotated[
        bool, Query(description="also the boxes of the version's other pre-annotation jobs")
    ] = False,
) -> dict[str, int]:
    """Deletes what the job's earlier runs annotated (a re-run replaces them)."""
    deleted = annotations.clear_previous_runs(session, principal, run_id, earlier_jobs=earlier_jobs)
    return {"deleted": deleted}


@router.post(
    "/{run_id}/evaluation", response_model=EvaluationPublic, status_code=status.HTTP_201_CREATED
)
def record_evaluation(
    run_id: DbInt,
    body: EvaluationMetrics,
    session: SessionDep,
    principal: RunOrUserDep,
    key: IdempotencyKey = None,
) -> object:
    """Stores what a model-evaluation run measured, for its job's model and dataset versions."""
    jobs.get_run(session, principal, run_id)

    def write() -> dict[str, Any]:
        evaluation = evaluations.record(session, principal, body.model_dump(mode="json"))
        return EvaluationPublic.model_validate(evaluation).model_dump(mode="json")

    return idempotency.once(session, principal, key, write)


@router.post(
    "/{run_id}/model-versions",
    response_model=ModelVersionPublic,
    status_code=status.HTTP_201_CREATED,
)
def add_run_model_version(
    run_id: DbInt,
    file: Annotated[UploadFile, File(description="the weights")],
    session: SessionDep,
    principal: RunOrUserDep,
    store: StoreDep,
    settings: SettingsDep,
    name: Annotated[str, Form()],
    family: Annotated[str | None, Form()] = None,
    labels: Annotated[
        str | None, Form(description="a JSON list or commas; default: the source's")
    ] = None,
    metadata: Annotated[str | None, Form(description="a JSON object kept with the version")] = None,
    key: IdempotencyKey = None,
) -> object:
    """A new version of the model the run's job runs on (e.g. converted weights): checked as
    any upload, with the job as its lineage (`produced_by_job_id`, `metadata.source_version_id`).
    Only the run's own token may: the lineage is the run's word."""
    run = jobs.get_run(session, principal, run_id)
    if not principal.is_run:
        raise Forbidden("only the run itself adds the versions it makes (its token)")

    names, extra = labels_field(labels), _json_object(metadata, "metadata")

    def write() -> dict[str, Any]:
        version = model_registry.add_produced_version(
            session, store, principal, run.job, file.file, name=name, family=family or None,
            labels=names, metadata=extra, max_bytes=settings.max_upload_bytes,
        )  # fmt: skip
        return ModelVersionPublic.of(version).model_dump(mode="json")

    return idempotency.once(session, principal, key, write)


def _json_object(raw: str | None, field: str) -> dict[str, Any] | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{field}: invalid JSON ({exc})", details={"loc": [field]}) from exc
    if not isinstance(value, dict):
        raise InvalidInput(f"{field} must be a JSON object", details={"loc": [field]})
    return value


@router.post(
    "/{run_id}/output-version", response_model=VersionPublic, status_code=status.HTTP_201_CREATED
)
def create_run_output_version(
    run_id: DbInt,
    body: OutputVersionCreate,
    session: SessionDep,
    principal: RunOrUserDep,
    key: IdempotencyKey = None,
) -> object:
    """A version produced by the run's job, with the input version as parent."""
    jobs.get_run(session, principal, run_id)

    def write() -> dict[str, Any]:
        version = versions.create_output_version(
            session, principal, body.name, description=body.description,
            copy_input=body.copy_input, asset_ids=body.asset_ids, tags=body.tags,
        )  # fmt: skip
        return VersionPublic.model_validate(version).model_dump(mode="json")

    return idempotency.once(session, principal, key, write)
