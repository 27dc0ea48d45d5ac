"""Triggers: what starts a pipeline or a processing by itself (see `domain.triggers`)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from darkroom.domain import triggers
from darkroom.http.deps import PageDep, PrincipalDep, SessionDep
from darkroom.http.schemas import DbInt, Page, TriggerCreate, TriggerPublic, TriggerUpdate

router = APIRouter(prefix="/triggers", tags=["triggers"])


@router.post("", response_model=TriggerPublic, status_code=status.HTTP_201_CREATED)
def create_trigger(
    body: TriggerCreate, session: SessionDep, principal: PrincipalDep
) -> TriggerPublic:
    """Checked whole; it starts from now (what is already there does not fire it)."""
    spec = triggers.TriggerSpec(**body.model_dump())
    return TriggerPublic.model_validate(triggers.create_trigger(session, principal, spec))


@router.get("", response_model=Page[TriggerPublic])
def list_triggers(
    session: SessionDep, principal: PrincipalDep, page: PageDep
) -> Page[TriggerPublic]:
    result = triggers.list_triggers(session, principal, page)
    return Page[TriggerPublic](items=[TriggerPublic.model_validate(t) for t in result.items],
                               next=result.next)  # fmt: skip


@router.get("/{trigger_id}", response_model=TriggerPublic)
def get_trigger(trigger_id: DbInt, session: SessionDep, principal: PrincipalDep) -> TriggerPublic:
    return TriggerPublic.model_validate(triggers.get_trigger(session, principal, trigger_id))


@router.patch("/{trigger_id}", response_model=TriggerPublic)
def update_trigger(
    trigger_id: DbInt, body: TriggerUpdate, session: SessionDep, principal: PrincipalDep
) -> TriggerPublic:
    """Disable or enable; enabled again, it starts from now."""
    found = triggers.set_enabled(session, principal, trigger_id, body.enabled)
    return TriggerPublic.model_validate(found)


@router.delete("/{trigger_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_trigger(trigger_id: DbInt, session: SessionDep, principal: PrincipalDep) -> Response:
    """What it launched stays."""
    triggers.delete_trigger(session, principal, trigger_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
