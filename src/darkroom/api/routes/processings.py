from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy.orm import Session

from darkroom.api.deps import PageDep, PrincipalDep, SessionDep
from darkroom.api.schemas import (
    Page,
    ProcessingCreate,
    ProcessingPublic,
    ProcessingUpdate,
    RevisionPublic,
)
from darkroom.db.models import Processing
from darkroom.domain import processings
from darkroom.domain.processings import RevisionSpec

router = APIRouter(prefix="/processings", tags=["processings"])


def _public(session: Session, p: Processing) -> ProcessingPublic:
    revision = processings.latest_revision(session, p.id)
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
    return Page[ProcessingPublic](
        items=[_public(session, p) for p in result.items], next=result.next
    )


@router.post("", response_model=ProcessingPublic, status_code=status.HTTP_201_CREATED)
def create_processing(
    body: ProcessingCreate, session: SessionDep, principal: PrincipalDep
) -> object:
    spec = RevisionSpec(body.source, body.parameters_schema, body.timeout_s, body.resources)
    created = processings.create_processing(
        session, principal, name=body.name, type=body.type, target=body.target,
        description=body.description, needs_model=body.needs_model, spec=spec,
    )  # fmt: skip
    return _public(session, created)


@router.get("/{ident}", response_model=ProcessingPublic)
def get_processing(ident: str, session: SessionDep, principal: PrincipalDep) -> object:
    """`ident` is the id or the name."""
    return _public(session, processings.get_processing(session, principal, ident))


@router.patch("/{ident}", response_model=ProcessingPublic)
def update_processing(
    ident: str, body: ProcessingUpdate, session: SessionDep, principal: PrincipalDep
) -> object:
    """Changes to source, parameters schema, timeout or resources make a new revision."""
    updated = processings.update_processing(
        session, principal, ident, **body.model_dump(exclude_unset=True)
    )
    return _public(session, updated)


@router.get("/{ident}/revisions", response_model=Page[RevisionPublic])
def list_revisions(ident: str, session: SessionDep, principal: PrincipalDep) -> object:
    revisions = processings.list_revisions(session, principal, ident)
    return Page[RevisionPublic](
        items=[RevisionPublic.model_validate(r) for r in revisions], next=None
    )
