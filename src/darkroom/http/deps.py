"""Dependencies shared by the routes: session, caller, blob store, settings, paging."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from sqlalchemy.orm import Session

from darkroom.config import Settings
from darkroom.db.engine import session_scope
from darkroom.domain.accounts import Principal, authenticate
from darkroom.domain.pagination import MAX_LIMIT, PageRequest
from darkroom.errors import Forbidden
from darkroom.http.schemas import DbInt
from darkroom.storage import BlobStore

__all__ = [
    "IdempotencyKey",
    "PageDep",
    "PrincipalDep",
    "RunOrUserDep",
    "SessionDep",
    "SettingsDep",
    "StoreDep",
    "bearer_token",
    "commit_and_wake",
]


READ_METHODS = ("GET", "HEAD", "OPTIONS")


async def write_slot(request: Request) -> AsyncIterator[None]:
    """On SQLite, one writing request at a time, queued on the event loop.

    SQLite has one writer; a request that waited for its lock inside a worker thread held that
    thread, and with 40+ concurrent writers every thread waited while the lock holder needed one
    more to commit: stalls, then "database is locked". Waiting here costs no thread."""
    state = request.app.state
    if request.method in READ_METHODS or not state.serialize_writes:
        yield
        return
    if state.write_lock is None:
        state.write_lock = asyncio.Lock()
    async with state.write_lock:
        yield


WriteSlot = Annotated[None, Depends(write_slot, scope="function")]


def get_session(request: Request, _slot: WriteSlot) -> Iterator[Session]:
    write = request.method not in READ_METHODS
    with session_scope(request.app.state.sessions, write=write) as session:
        yield session


# scope="function": the transaction commits before the response is sent, so a 2xx means stored.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def get_any_principal(request: Request, session: SessionDep) -> Principal:
    principal = authenticate(session, bearer_token(request))
    if principal.is_deployment:
        raise Forbidden("a deployment token can only call its deployment's predict")
    return principal


# Routes a processing's code may call with its run token (its inputs, outputs and progress).
RunOrUserDep = Annotated[Principal, Depends(get_any_principal)]


def get_user_principal(principal: RunOrUserDep) -> Principal:
    if principal.is_run:
        raise Forbidden(
            "a run token can only read its job's inputs and write its outputs and progress"
        )
    return principal


# Everything else: people's tokens only.
PrincipalDep = Annotated[Principal, Depends(get_user_principal)]


def get_store(request: Request) -> BlobStore:
    return request.app.state.store


StoreDep = Annotated[BlobStore, Depends(get_store)]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="a retried request with the same key answers what the first one did",
    ),
]


def get_page(
    after: Annotated[DbInt | None, Query(description="id of the last item seen")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> PageRequest:
    return PageRequest(after, limit)


PageDep = Annotated[PageRequest, Depends(get_page)]


def commit_and_wake(request: Request, session: Session) -> None:
    """Commits new pending runs and wakes the in-process scheduler, so they start at once."""
    session.commit()
    scheduler = getattr(request.app.state, "scheduler", None)
    if scheduler is not None:
        scheduler.wake()
