"""The catalog: processings (list, a processing with its revisions, create and edit) and models.

Editing a processing's schema, defaults, timeout or code makes a new revision (the domain
decides); the page shows every revision so runs can be traced to what they ran.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from darkroom import charts
from darkroom.db.models import ProcessingType
from darkroom.domain import deployments, evaluations, jobs, model_registry, processings, versions
from darkroom.domain.accounts import Principal
from darkroom.domain.pagination import PageRequest
from darkroom.domain.parameters import resolve_parameters
from darkroom.domain.processings import DEFAULT_TIMEOUT_S, RevisionSpec
from darkroom.errors import DarkroomError, InvalidInput, NotFound
from darkroom.http.deps import SessionDep
from darkroom.sources import InlineSource
from darkroom.web.auth import UserDep
from darkroom.web.notices import with_notice
from darkroom.web.render import page

__all__ = ["router"]

router = APIRouter()

STARTER_CODE = '''def run(ctx):
    """Called once per run with a ProcessingContext (parameters, assets, log, progress)."""
    ctx.log.info("parameters: %s", ctx.parameters)
'''
STARTER_SCHEMA = {
    "type": "object",
    "properties": {"batch_size": {"type": "integer", "minimum": 1, "default": 8}},
}


@router.get("/processings", response_class=HTMLResponse)
def processings_page(request: Request, session: SessionDep, user: UserDep) -> HTMLResponse:
    items = processings.list_processings(session, user, PageRequest(limit=1000)).items
    latest = processings.latest_revisions(session, [p.id for p in items])
    return page(request, "processings.html", processings=items, latest=latest)


def _json_field(raw: str, field: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"{field} is not valid JSON: {exc}", details={"loc": [field]}) from exc


def _int_field(raw: str, field: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"{field} must be a whole number", details={"loc": [field]}) from None


def _editor(
    request: Request, session: Session, user: Principal, processing: Any, form: dict[str, Any],
    error: DarkroomError | None = None,
) -> HTMLResponse:  # fmt: skip
    revisions = processings.list_revisions(session, user, processing.id) if processing else []
    latest = revisions[-1] if revisions else None
    loc = error.details.get("loc") if error and isinstance(error.details, dict) else None
    defaults: dict[str, Any] = {}
    if latest is not None:
        try:
            defaults = resolve_parameters(latest.parameters_schema, {})
        except DarkroomError:
            defaults = {}
    editable = processing is None or processing.organization_id == user.organization_id
    code = processings.code_of(latest.source) if latest is not None else []
    recent = []
    if processing is not None:  # the way back from the code to what ran it
        flt = jobs.JobFilter(processing=str(processing.id))
        recent = jobs.list_jobs(session, user, PageRequest(limit=10, newest_first=True), flt).items
    return page(request, "processing.html", processing=processing, revisions=revisions,
                latest=latest, defaults=defaults, form=form, editable=editable, code=code,
                recent_jobs=recent,
                types=list(ProcessingType), error=error.message if error else None,
                error_field=str(loc[0]) if loc else None)  # fmt: skip


def _form_of(revision: Any, processing: Any) -> dict[str, Any]:
    return {
        "name": processing.name, "type": processing.type,
        "description": processing.description, "needs_model": processing.needs_model,
        "timeout_s": str(revision.timeout_s),
        "parameters_schema": json.dumps(revision.parameters_schema, indent=2),
        "code": getattr(revision.source, "code", ""), "kind": revision.source.kind,
    }  # fmt: skip


@router.get("/processings/new", response_class=HTMLResponse)
def new_processing_form(request: Request, session: SessionDep, user: UserDep) -> HTMLResponse:
    form = {"name": "", "type": "custom", "description": "", "needs_model": False,
            "timeout_s": str(DEFAULT_TIMEOUT_S), "kind": "inline", "code": STARTER_CODE,
            "parameters_schema": json.dumps(STARTER_SCHEMA, indent=2)}  # fmt: skip
    return _editor(request, session, user, None, form)


@router.post("/processings/new", response_class=HTMLResponse)
def create_processing(
    request: Request,
    session: SessionDep,
    user: UserDep,
    name: Annotated[str, Form()] = "",
    type: Annotated[str, Form()] = "custom",
    description: Annotated[str, Form()] = "",
    needs_model: Annotated[bool, Form()] = False,
    timeout_s: Annotated[str, Form()] = "",
    parameters_schema: Annotated[str, Form()] = "",
    code: Annotated[str, Form()] = "",
) -> Response:
    form = {"name": name, "type": type, "description": description, "needs_model": needs_model,
            "timeout_s": timeout_s, "parameters_schema": parameters_schema, "code": code,
            "kind": "inline"}  # fmt: skip
    try:
        spec = RevisionSpec(
            source=InlineSource(code, "run"),
            parameters_schema=_json_field(parameters_schema, "parameters_schema"),
            timeout_s=_int_field(timeout_s, "timeout_s"),
        )
        created = processings.create_processing(session, user, name=name, type=type, spec=spec,
                                                description=description,
                                                needs_model=needs_model)  # fmt: skip
    except DarkroomError as exc:
        session.rollback()
        return _editor(request, session, user, None, form, exc)
    return RedirectResponse(with_notice(f"/processings/{created.id}", "processing-created"), 303)


@router.get("/processings/{ident}", response_class=HTMLResponse)
def processing_page(request: Request, ident: str, session: SessionDep, user: UserDep) -> Response:
    processing = processings.get_processing(session, user, ident)
    latest = processings.latest_revision(session, processing.id)
    return _editor(request, session, user, processing, _form_of(latest, processing))


@router.post("/processings/{ident}", response_class=HTMLResponse)
def edit_processing(
    request: Request,
    ident: str,
    session: SessionDep,
    user: UserDep,
    description: Annotated[str, Form()] = "",
    needs_model: Annotated[bool, Form()] = False,
    timeout_s: Annotated[str, Form()] = "",
    parameters_schema: Annotated[str, Form()] = "",
    code: Annotated[str | None, Form()] = None,
) -> Response:
    """Saves the edit; a new revision appears when what runs changed."""
    processing = processings.get_processing(session, user, ident)
    latest = processings.latest_revision(session, processing.id)
    form = {**_form_of(latest, processing), "description": description,
            "needs_model": needs_model, "timeout_s": timeout_s,
            "parameters_schema": parameters_schema}  # fmt: skip
    source = None
    if code is not None and isinstance(latest.source, InlineSource):
        form["code"] = code
        source = dataclasses.replace(latest.source, code=code)
    try:
        processings.update_processing(
            session, user, processing.id, description=description, needs_model=needs_model,
            source=source, parameters_schema=_json_field(parameters_schema, "parameters_schema"),
            timeout_s=_int_field(timeout_s, "timeout_s"),
        )  # fmt: skip
    except DarkroomError as exc:
        session.rollback()
        return _editor(request, session, user, processing, form, exc)
    return RedirectResponse(with_notice(f"/processings/{processing.id}", "processing-saved"), 303)


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request, session: SessionDep, user: UserDep) -> HTMLResponse:
    return render_models(request, session, user)


def render_models(
    request: Request, session: Session, user: Principal, error: str | None = None, name: str = ""
) -> HTMLResponse:
    """The models page, with the new-model form's error and value when it was refused."""
    items = model_registry.list_models(session, user, PageRequest(limit=1000)).items
    versions_of = model_registry.versions_of_models(session, user, [m.id for m in items])
    return page(request, "models.html", models=items, versions_of=versions_of, error=error,
                new_name=name, organization_id=user.organization_id,
                status_code=422 if error else 200)  # fmt: skip


@router.get("/ui/evaluations/{evaluation_id}/{chart}.png")
def evaluation_chart(
    evaluation_id: int, chart: charts.Chart, session: SessionDep, user: UserDep
) -> Response:
    data = charts.evaluation_chart(evaluations.get_evaluation(session, user, evaluation_id).metrics,
                                   chart)  # fmt: skip
    if data is None:
        raise NotFound(f"evaluation {evaluation_id} has no {chart} figures")
    return Response(data, media_type="image/png", headers={"Cache-Control": "private"})


@router.get("/model-versions/{version_id}", response_class=HTMLResponse)
def model_version_page(
    request: Request, version_id: int, session: SessionDep, user: UserDep
) -> HTMLResponse:
    """A model version and its evaluations, side by side (one column each, newest first)."""
    version = model_registry.get_model_version(session, user, version_id)
    found = evaluations.list_evaluations(session, user, version_id)
    labels = list(dict.fromkeys(x["label"] for e in found for x in e.metrics["labels"]))
    per_label = [{x["label"]: x for x in e.metrics["labels"]} for e in found]
    source_id = (version.meta or {}).get("source_version_id")
    source = None
    if isinstance(source_id, int):
        with contextlib.suppress(NotFound):
            source = model_registry.get_model_version(session, user, source_id)
    model_jobs = jobs.list_jobs(session, user, PageRequest(limit=100),
                                jobs.JobFilter(model_version_id=version.id)).items  # fmt: skip
    serving = deployments.list_deployments(session, user, PageRequest(limit=100), version.id).items
    titles = versions.version_titles(session, user, {e.dataset_version_id for e in found})
    return page(request, "model_version.html", version=version, evaluations=found, labels=labels,
                version_titles=titles,
                per_label=per_label, source=source, model_jobs=model_jobs,
                deployments=serving)  # fmt: skip
