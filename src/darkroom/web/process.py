"""The Process flow: processing -> model -> model version -> parameters -> launch.

Opened from a version page in a modal (htmx swaps this module's fragments into a `<dialog>`);
the same URLs render a whole page when opened directly, so it also works without JavaScript.
A model version's page has its own, shorter flow for processings on models: processing,
sample images (a dataset version, optional), parameters.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from darkroom.db.models import ProcessingType, TargetKind
from darkroom.domain import (
    annotations,
    assets,
    jobs,
    labels,
    model_registry,
    pipelines,
    previews,
    processings,
    versions,
)
from darkroom.domain.accounts import Principal
from darkroom.domain.pagination import PageRequest
from darkroom.errors import DarkroomError
from darkroom.http.deps import SessionDep, commit_and_wake
from darkroom.http.schemas import DbInt
from darkroom.text import is_number
from darkroom.web import forms
from darkroom.web.auth import UserDep
from darkroom.web.notices import with_notice
from darkroom.web.render import page

__all__ = ["router"]

router = APIRouter()


def _process_context(
    session: Session, user: Principal, version_id: DbInt, processing: str | None, model: str | None,
    model_version: str | None,
) -> dict[str, Any]:  # fmt: skip
    version = versions.get_version(session, user, version_id)
    procs = processings.list_processings(session, user, PageRequest(limit=1000)).items
    groups: dict[str, list[Any]] = {}
    for p in sorted(procs, key=lambda p: (p.type, p.name)):
        if p.target == TargetKind.dataset_version:
            groups.setdefault(p.type, []).append(p)
    chosen = processings.get_processing(session, user, processing) if processing else None
    models = model_registry.list_models(session, user, PageRequest(limit=1000)).items
    mv = (
        model_registry.get_model_version(session, user, int(model_version))
        if model_version and is_number(model_version)
        else None
    )
    chosen_model = (
        model_registry.get_model(session, user, int(model)) if model and is_number(model) else None
    )
    needs = chosen is not None and chosen.needs_model
    if not needs:  # a model chosen for the previous processing is not this one's
        mv = chosen_model = None
    if needs and chosen_model is None and mv is None and len(models) == 1:
        chosen_model = models[0]  # the only choice is made already
    if mv is not None and (chosen_model is None or mv.model_id != chosen_model.id):
        if chosen_model is None:
            chosen_model = mv.model
        else:
            mv = None  # the model changed: its versions are to be chosen again
    model_versions = (
        model_registry.list_model_versions(session, user, chosen_model.id) if chosen_model else []
    )
    if needs and mv is None and len(model_versions) == 1:
        mv = model_versions[0]
    version_label_rows = labels.list_labels(session, user, version_id)
    version_labels = {x.name.lower() for x in version_label_rows}
    choices = {"labels": [x.name for x in version_label_rows],
               "tags": assets.version_tags(session, user, version_id)}  # fmt: skip
    schema = processings.latest_revision(session, chosen.id).parameters_schema if chosen else {}
    preannotated = 0
    if chosen is not None and chosen.type == ProcessingType.pre_annotation:
        preannotated = annotations.preannotated_assets(session, version.id)
    return {
        "preannotated": preannotated,
        "version": version, "groups": list(groups.items()), "chosen": chosen, "models": models,
        "model": chosen_model, "model_version": mv, "model_versions": model_versions,
        "version_label_names": version_labels, "schema": schema, "choices": choices,
        "pipelines": pipelines.list_pipelines(session, user, PageRequest(limit=1000)).items,
    }  # fmt: skip


@router.get("/versions/{version_id}/process", response_class=HTMLResponse)
def process_form(
    request: Request,
    version_id: DbInt,
    session: SessionDep,
    user: UserDep,
    processing: str | None = None,
    model: str | None = None,
    model_version: str | None = None,
) -> HTMLResponse:
    """Choose a processing, a model and version if it needs one, then its parameters."""
    ctx = _process_context(session, user, version_id, processing or None, model or None,
                           model_version or None)  # fmt: skip
    fields = forms.fields_of(ctx["schema"], choices=ctx["choices"])
    return page(request, "process.html", fields=fields, field_errors={}, error=None, **ctx)


Form = dict[str, Any]


async def form_fields(request: Request) -> Form:
    """The submitted form as strings (its fields come from a schema, not from a signature); a
    multi-choice field (named by a `forms.MULTI_MARKER` input) as the list of what was checked."""
    data = await request.form()
    form: Form = {k: str(v) for k, v in data.items() if k != forms.MULTI_MARKER}
    for name in data.getlist(forms.MULTI_MARKER):
        form[str(name)] = [str(v) for v in data.getlist(str(name))]
    return form


def _launch(
    request: Request, session: Session, user: Principal, field_errors: dict[str, str],
    **launch: Any,
) -> tuple[Response | None, str | None]:  # fmt: skip
    """Launches the job and answers the redirect to its page, or the error (a parameter's is
    also put in `field_errors`, by its field)."""
    try:
        job = jobs.launch(session, user, executor=getattr(request.app.state, "executor", None),
                          **launch)  # fmt: skip
    except DarkroomError as exc:
        session.rollback()
        loc = exc.details.get("loc") if isinstance(exc.details, dict) else None
        if loc and loc[0] == "parameters" and len(loc) > 1:
            field_errors[str(loc[1])] = exc.message.split(": ", 1)[-1]
        return None, exc.message
    commit_and_wake(request, session)
    url = with_notice(f"/jobs/{job.id}", "launched")
    if request.headers.get("hx-request") == "true":
        return Response(headers={"HX-Redirect": url}), None
    return RedirectResponse(url, status_code=303), None


def _submitted(
    session: Session, user: Principal, version_id: DbInt, form: Form
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str], int | None]:
    """The Process form as sent (Launch or Preview): its context, parameter values, errors by
    field and model version."""
    ctx = _process_context(session, user, version_id, form.get("processing"), None,
                           form.get("model_version") or None)  # fmt: skip
    values, field_errors = forms.read_values(ctx["schema"], form)
    model_version_id = int(form["model_version"]) if form.get("model_version") else None
    return ctx, values, field_errors, model_version_id


@router.post("/versions/{version_id}/process", response_class=HTMLResponse)
def launch_from_form(
    request: Request,
    version_id: DbInt,
    session: SessionDep,
    user: UserDep,
    form: Annotated[Form, Depends(form_fields)],
) -> Response:
    """Launches with the submitted parameters, or shows the form again with errors by field."""
    ctx, values, field_errors, model_version_id = _submitted(session, user, version_id, form)
    error = None
    if not field_errors:
        launched, error = _launch(
            request, session, user, field_errors, processing=form["processing"],
            target_version_id=version_id, model_version_id=model_version_id, parameters=values,
        )  # fmt: skip
        if launched is not None:
            return launched
    typed = forms.submitted(ctx["schema"], form, field_errors)
    fields = forms.fields_of(ctx["schema"], {**values, **typed}, ctx["choices"])
    return page(request, "process.html", fields=fields, field_errors=field_errors,
                error=error or "Some values are not valid.", **ctx)  # fmt: skip


# -- preview on a few assets ---------------------------------------------------------------------


@router.post("/versions/{version_id}/preview", response_class=HTMLResponse)
def launch_preview(
    request: Request,
    version_id: DbInt,
    session: SessionDep,
    user: UserDep,
    form: Annotated[Form, Depends(form_fields)],
) -> Response:
    """Runs the chosen processing, with the form's parameters, on a copy of the version's first
    assets; answers the preview's panel, which follows the job until it ends."""
    _, values, field_errors, model_version_id = _submitted(session, user, version_id, form)
    if field_errors:
        return page(request, "_preview.html", error="Some values are not valid: "
                    + "; ".join(f"{k}: {v}" for k, v in field_errors.items()))  # fmt: skip
    count = form.get("preview_assets", "")
    try:
        job = previews.launch_preview(
            session, user, processing=form.get("processing", ""), version_id=version_id,
            assets=int(count) if is_number(count) else 0,
            model_version_id=model_version_id, parameters=values,
            executor=getattr(request.app.state, "executor", None),
        )  # fmt: skip
    except DarkroomError as exc:
        session.rollback()
        return page(request, "_preview.html", error=exc.message)
    commit_and_wake(request, session)
    return preview_panel(request, job.id, session, user)


@router.get("/ui/previews/{job_id}", response_class=HTMLResponse)
def preview_panel(request: Request, job_id: DbInt, session: SessionDep, user: UserDep) -> Response:
    """The preview's state; once its run ended, the assets it shows with their boxes."""
    preview = previews.get_preview(session, user, job_id)
    run = preview.job.runs[-1]
    ids = [a.id for a in preview.assets]
    version_labels = labels.list_labels(session, user, preview.version.id)
    return page(request, "_preview.html", error=None, preview=preview, run=run,
                shapes=annotations.shapes_of_assets(session, ids) if run.finished_at else {},
                label_map={x.id: x for x in version_labels})  # fmt: skip


# -- processings on a model version (model-conversion) -------------------------------------------


def _model_process_context(
    session: Session, user: Principal, version_id: DbInt, processing: str | None
) -> dict[str, Any]:
    model_version = model_registry.get_model_version(session, user, version_id)
    procs = processings.list_processings(session, user, PageRequest(limit=1000)).items
    on_models = sorted((p for p in procs if p.target == TargetKind.model_version),
                       key=lambda p: p.name)  # fmt: skip
    chosen = next((p for p in on_models if processing in (p.name, str(p.id))), None)
    if chosen is None and len(on_models) == 1:
        chosen = on_models[0]
    schema = processings.latest_revision(session, chosen.id).parameters_schema if chosen else {}
    return {
        "model_version": model_version, "processings": on_models, "chosen": chosen,
        "schema": schema, "sample_versions": versions.recent_version_titles(session, user),
    }  # fmt: skip


@router.get("/model-versions/{version_id}/process", response_class=HTMLResponse)
def process_model_form(
    request: Request,
    version_id: DbInt,
    session: SessionDep,
    user: UserDep,
    processing: str | None = None,
) -> HTMLResponse:
    """Choose a processing on models (conversion), its sample images and parameters."""
    ctx = _model_process_context(session, user, version_id, processing or None)
    initial = {}
    if ctx["model_version"].format == "onnx" and "to" in ctx["schema"].get("properties", {}):
        initial["to"] = "int8"  # an ONNX version is already what `to`'s default makes
    return page(request, "process_model.html", fields=forms.fields_of(ctx["schema"], initial),
                field_errors={}, error=None, sample=None, **ctx)  # fmt: skip


@router.post("/model-versions/{version_id}/process", response_class=HTMLResponse)
def launch_on_model(
    request: Request,
    version_id: DbInt,
    session: SessionDep,
    user: UserDep,
    form: Annotated[Form, Depends(form_fields)],
) -> Response:
    """Launches on the model version, or shows the form again with errors by field."""
    ctx = _model_process_context(session, user, version_id, form.get("processing"))
    values, field_errors = forms.read_values(ctx["schema"], form)
    sample = int(form["sample_version"]) if is_number(form.get("sample_version", "")) else None
    error = None
    if ctx["chosen"] is None:
        error = "Choose a processing."
    elif not field_errors:
        launched, error = _launch(
            request, session, user, field_errors, processing=ctx["chosen"].id,
            target_version_id=sample, model_version_id=version_id, parameters=values,
        )  # fmt: skip
        if launched is not None:
            return launched
    fields = forms.fields_of(
        ctx["schema"], {**values, **forms.submitted(ctx["schema"], form, field_errors)}
    )
    return page(request, "process_model.html", fields=fields, field_errors=field_errors,
                error=error or "Some values are not valid.", sample=sample, **ctx)  # fmt: skip
