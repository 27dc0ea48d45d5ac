"""Models made in the browser: create a model, upload a version in two steps.

The upload stores and describes the weights with the API's checks (`store_weights`) and shows
what darkroom read (format, family, input size, labels in output order) before anything is
saved; the user may correct the labels, then saves. Between the two steps the weights wait in
the blob store, named by their sha256, which the page signs with the session's token: saving
needs the signature, so nobody makes a version of weights they never uploaded by naming a
hash. Weights never saved are collected like any unreferenced blob.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from darkroom.domain import model_registry
from darkroom.domain.accounts import Principal
from darkroom.errors import DarkroomError, Forbidden
from darkroom.http.deps import SessionDep, SettingsDep, StoreDep
from darkroom.http.schemas import DbInt
from darkroom.http.uploads import labels_or_label_map
from darkroom.web.auth import UserDep, sign, signed_by_session
from darkroom.web.catalog import render_models
from darkroom.web.notices import with_notice
from darkroom.web.render import page

__all__ = ["router"]

router = APIRouter()


@router.post("/models", response_class=HTMLResponse)
def create_model(
    request: Request,
    session: SessionDep,
    user: UserDep,
    name: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
) -> Response:
    try:
        model = model_registry.create_model(session, user, name, description)
    except DarkroomError as exc:
        session.rollback()
        return render_models(request, session, user, error=exc.message, name=name)
    return RedirectResponse(with_notice(f"/models/{model.id}/upload", "model-created"), 303)


def _upload_page(
    request: Request, session: Session, user: Principal, model_id: int, **extra: Any
) -> HTMLResponse:
    model = model_registry.get_model(session, user, model_id)
    taken = {v.name for v in model_registry.list_model_versions(session, user, model_id)}
    name = next(f"v{i}" for i in range(1, len(taken) + 2) if f"v{i}" not in taken)
    values = {"name": name, "labels": "", "family": "", **extra.pop("values", {})}
    return page(request, "model_upload.html", model=model, families=model_registry.FAMILIES,
                values=values, **{"error": None, "weights": None, **extra})  # fmt: skip


@router.get("/models/{model_id}/upload", response_class=HTMLResponse)
def upload_form(request: Request, model_id: DbInt, session: SessionDep, user: UserDep) -> Response:
    """Step 1: the weights (ONNX, a TF-OD frozen graph or SavedModel zip) and, if they carry no
    names, their labels or label map."""
    return _upload_page(request, session, user, model_id)


@router.post("/models/{model_id}/upload", response_class=HTMLResponse)
def upload_weights(
    request: Request,
    model_id: DbInt,
    session: SessionDep,
    user: UserDep,
    store: StoreDep,
    settings: SettingsDep,
    file: Annotated[UploadFile | None, File()] = None,
    name: Annotated[str, Form()] = "",
    family: Annotated[str, Form()] = "",
    labels: Annotated[str, Form()] = "",
    label_map: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Step 2: what darkroom read from the weights, labels editable, before saving."""
    values = {"name": name, "labels": labels, "family": family}
    model_registry.get_model(session, user, model_id)
    if file is None or not file.filename:
        return _upload_page(request, session, user, model_id, values=values,
                            error="Choose the weights file to upload.")  # fmt: skip
    try:
        names = labels_or_label_map(labels or None, label_map)
        weights = model_registry.store_weights(
            session, store, file.file, family=family or None, labels=names,
            max_bytes=settings.max_upload_bytes,
        )  # fmt: skip
    except DarkroomError as exc:
        session.rollback()
        return _upload_page(request, session, user, model_id, values=values, error=exc.message)
    described = weights.described
    values["labels"] = "\n".join(described["labels"])
    return _upload_page(
        request, session, user, model_id, values=values, weights=weights, filename=file.filename,
        signature=sign(request, weights.sha256),
    )  # fmt: skip


@router.post("/models/{model_id}/versions", response_class=HTMLResponse)
def save_version(
    request: Request,
    model_id: DbInt,
    session: SessionDep,
    user: UserDep,
    store: StoreDep,
    weights: Annotated[str, Form()],
    signature: Annotated[str, Form()],
    name: Annotated[str, Form()] = "",
    family: Annotated[str, Form()] = "",
    labels: Annotated[str, Form()] = "",
) -> Response:
    """Saves the version of the weights step 2 showed, with the labels as confirmed."""
    if not signed_by_session(request, weights, signature):
        raise Forbidden("these weights were not uploaded in this session: upload them again",
                        code="unsigned_weights")  # fmt: skip
    names = [line.strip() for line in labels.splitlines() if line.strip()] or None
    try:
        version = model_registry.create_model_version_from_weights(
            session, store, user, model_id, weights, name=name, family=family or None,
            labels=names,
        )  # fmt: skip
    except DarkroomError as exc:
        session.rollback()
        stored = model_registry.StoredWeights(weights, 0, {})
        values = {"name": name, "labels": labels, "family": family}
        return _upload_page(request, session, user, model_id, values=values, weights=stored,
                            signature=signature, error=exc.message)  # fmt: skip
    return RedirectResponse(with_notice(f"/model-versions/{version.id}", "model-version-saved"),
                            303)  # fmt: skip
