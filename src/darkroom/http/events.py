"""A run's log as server-sent events, for the API's stream and the job page alike."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import Request

from darkroom.db.engine import session_scope
from darkroom.db.models import ACTIVE_STATUSES
from darkroom.domain import jobs, logs
from darkroom.domain.accounts import Principal
from darkroom.http.schemas import DbInt, LogLinePublic, RunPublic

__all__ = ["STREAM_BATCH", "STREAM_POLL_S", "run_log_events"]

STREAM_POLL_S = 0.1
STREAM_BATCH = 500


async def run_log_events(
    request: Request, principal: Principal, run_id: DbInt, after: DbInt, *, states: bool = False
) -> AsyncIterator[dict[str, Any]]:
    """`log` events after seq `after` as lines land, then one `end` event (the API's stream and
    the job page's share it). With `states` (the job page's), also a `run` event with the run
    whenever its status, times or progress change, the first one at once."""
    sessions = request.app.state.sessions

    def fetch(after_seq: int) -> tuple[list[logs.Line], dict[str, Any]]:
        with session_scope(sessions, write=False) as session:
            run = jobs.get_run(session, principal, run_id)
            lines = logs.list_lines(session, principal, run_id, after_seq, STREAM_BATCH)
            return lines, RunPublic.of(run).model_dump(mode="json")

    last_state = None
    while True:
        lines, run = await anyio.to_thread.run_sync(fetch, after)
        state = (run["status"], run["started_at"], run["finished_at"], run["progress"])
        if states and state != last_state and run["status"] in ACTIVE_STATUSES:
            last_state = state
            yield {"event": "run", "data": json.dumps(run)}
        for line in lines:
            after = line.seq
            yield {
                "id": str(line.seq),
                "event": "log",
                "data": json.dumps(LogLinePublic.model_validate(line).model_dump(mode="json")),
            }
        if not lines and run["status"] not in ACTIVE_STATUSES:
            yield {"event": "end", "data": json.dumps(run)}
            return
        if len(lines) < STREAM_BATCH:
            if await request.is_disconnected():
                return
            await asyncio.sleep(STREAM_POLL_S)
