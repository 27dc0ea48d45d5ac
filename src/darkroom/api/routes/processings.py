from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile, status
from sqlalchemy.orm import Session

from darkroom.bundles import read_bundle
from darkroom.db.models import Processing, ProcessingRevision
from darkroom.domain import processings
from darkroom.domain.processings import RevisionSpec
from darkroom.http.deps import PageDep, PrincipalDep, SessionDep, SettingsDep, StoreDep
from darkroom.http.schemas import (
    Page,
    ProcessingCreate,
    ProcessingPublic,
    ProcessingUpdate,
    PushResult,
    RevisionPublic,
)
from darkroom.sources import parse_source

router = APIRouter(prefix="/processings", tags=["processings"])


def _public(
    session: Session, p: Processing, revision: ProcessingRevision | None = None
) -> ProcessingPublic:
    revision = revision or processings.latest_revision(session, p.id)
    return ProcessingPublic(
        id=p.id, name=p.name, type=p.type, target=p.target, description=p.description,
        is_public=p.is_public, builtin=p.organization_id is None, needs_model=p.needs_model,
        created_at=p.created_at, updated_at=p.updated_at,
        latest_revision=RevisionPublic.model_validate(revision),
    )  # fmt: skip


@router.get("", response_model=Page[ProcessingPublic])
def list_processings(session: SessionDep, principal: PrincipalDep, page: PageDep) -> object:
    """Public processings and the caller's organization's own."""
    result = processings.list_processings(session, principal, page)
    latest = processings.latest_revisions(session, [p.id for p in result.items])
    return Page[ProcessingPublic](
        items=[_public(session, p, latest.get(p.id)) for p in result.items], next=result.next
    )


@router.post("", response_model=ProcessingPublic, status_code=status.HTTP_201_CREATED)
def create_processing(
    body: ProcessingCreate, session: SessionDep, principal: PrincipalDep
) -> object:
    spec = RevisionSpec(
        parse_source(body.source), body.parameters_schema, body.timeout_s, body.resources
    )
    created = processings.create_processing(
        session, principal, name=body.name, type=body.type, target=body.target,
        description=body.description, needs_model=body.needs_model, spec=spec,
    )  # fmt: skip
    return _public(session, created)


@router.post("/push", response_model=PushResult, status_code=status.HTTP_201_CREATED,
             responses={200: {"description": "the same bundle was pushed before"}})  # fmt: skip
def push_bundle(
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    settings: SettingsDep,
    bundle: Annotated[UploadFile, File(description="the bundle: .tar.gz or .zip")],
    dev: Annotated[bool, Form(description="a development revision (run-local)")] = False,
) -> PushResult:
    """A new revision from a bundle (`darkroom.yaml`, code, pinned requirements), creating the
    processing on its first push. Unchanged files answer 200 with the existing revision."""
    limits = settings.bundle_limits
    data = bundle.file.read(limits.max_bytes + 1)
    pushed = processings.push_bundle(session, principal, store, read_bundle(data, limits), dev=dev)
    if not pushed.created:
        response.status_code = status.HTTP_200_OK
    return PushResult(
        processing=_public(session, pushed.processing),
        revision=RevisionPublic.model_validate(pushed.revision),
        created=pushed.created,
    )


@router.get("/{ident}", response_model=ProcessingPublic)
def get_processing(ident: str, session: SessionDep, principal: PrincipalDep) -> object:
    """`ident` is the id or the name."""
    return _public(session, processings.get_processing(session, principal, ident))


@router.patch("/{ident}", response_model=ProcessingPublic)
def update_processing(
    ident: str, body: ProcessingUpdate, session: SessionDep, principal: PrincipalDep
) -> object:
    """Changes to source, parameters schema, timeout or resources make a new revision."""
    changes = body.model_dump(exclude_unset=True)
    if changes.get("source") is not None:
        changes["source"] = parse_source(changes["source"])
    updated = processings.update_processing(session, principal, ident, **changes)
    return _public(session, updated)


@router.get("/{ident}/revisions", response_model=Page[RevisionPublic])
def list_revisions(ident: str, session: SessionDep, principal: PrincipalDep) -> object:
    revisions = processings.list_revisions(session, principal, ident)
    return Page[RevisionPublic](
        items=[RevisionPublic.model_validate(r) for r in revisions], next=None
    )
