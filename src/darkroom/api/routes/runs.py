"""Runs as people see them: status, cancel, logs (paged and streamed). What a run itself
calls with its own token is in `runtime`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse

from darkroom.domain import (
    jobs,
    logs,
)
from darkroom.http.deps import (
    PrincipalDep,
    RunOrUserDep,
    SessionDep,
)
from darkroom.http.events import run_log_events
from darkroom.http.schemas import (
    DbInt,
    LogLinePublic,
    Page,
    RunPublic,
)
from darkroom.text import is_number

router = APIRouter(prefix="/runs", tags=["runs"])


@router.get("/{run_id}", response_model=RunPublic)
def get_run(run_id: DbInt, session: SessionDep, principal: RunOrUserDep) -> RunPublic:
    return RunPublic.of(jobs.get_run(session, principal, run_id))


@router.post("/{run_id}/cancel", response_model=RunPublic)
def cancel_run(run_id: DbInt, session: SessionDep, principal: PrincipalDep) -> RunPublic:
    """A pending run is cancelled at once; a running one gets SIGTERM, then SIGKILL."""
    return RunPublic.of(jobs.cancel_run(session, principal, run_id))


@router.get("/{run_id}/logs", response_model=Page[LogLinePublic])
def list_run_logs(
    run_id: DbInt,
    session: SessionDep,
    principal: RunOrUserDep,
    after: Annotated[int, Query(ge=0, description="last seq seen")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Page[LogLinePublic]:
    lines = logs.list_lines(session, principal, run_id, after, limit + 1)
    more = len(lines) > limit
    lines = lines[:limit]
    return Page[LogLinePublic](
        items=[LogLinePublic.model_validate(x) for x in lines],
        next=lines[-1].seq if more else None,
    )


@router.get("/{run_id}/logs/stream", response_class=EventSourceResponse)
def stream_run_logs(
    run_id: DbInt,
    request: Request,
    session: SessionDep,
    principal: RunOrUserDep,
    after: Annotated[int, Query(ge=0)] = 0,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventSourceResponse:
    """Server-sent events: `log` events (id = seq) as lines land, then one `end` event with
    the run's final state. Reconnecting with `Last-Event-ID` resumes after that line."""
    jobs.get_run(session, principal, run_id)  # 404 before the stream opens
    if (
        last_event_id
        and last_event_id.isascii()
        and is_number(last_event_id)
        and len(last_event_id) < 19
    ):
        after = max(after, int(last_event_id))
    return EventSourceResponse(run_log_events(request, principal, run_id, after))
