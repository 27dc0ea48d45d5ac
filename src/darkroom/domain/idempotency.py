"""Idempotent writes of runs: a retried request answers what the first one did.

A run's SDK retries a write whose answer it did not receive (the server restarted, the
connection dropped). It sends the same `Idempotency-Key` each time; the first request that
commits stores its answer in the same transaction as its effect, so a retry either finds that
answer or does the work itself — never both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from darkroom.db.models import RunRequest
from darkroom.domain.accounts import Principal
from darkroom.errors import InvalidInput

__all__ = ["MAX_KEY_LENGTH", "once", "remember", "replay"]

MAX_KEY_LENGTH = 100


def _scope(principal: Principal, key: str | None) -> int | None:
    """The run the key belongs to; keys are only kept for runs (people retry by hand)."""
    if key is None or principal.run_id is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters",
            details={"loc": ["header", "Idempotency-Key"]},
        )
    return principal.run_id


def replay(session: Session, principal: Principal, key: str | None) -> dict[str, Any] | None:
    """The stored answer of an earlier request with this key, if one committed."""
    run_id = _scope(principal, key)
    if run_id is None:
        return None
    return session.scalar(
        select(RunRequest.response).where(RunRequest.run_id == run_id, RunRequest.key == key)
    )


def remember(
    session: Session, principal: Principal, key: str | None, response: dict[str, Any]
) -> None:
    """Stores the answer with the request's own transaction; a concurrent duplicate fails on
    the primary key (409) and its retry then replays."""
    run_id = _scope(principal, key)
    if run_id is not None:
        session.add(RunRequest(run_id=run_id, key=key, response=response))
        session.flush()


def once(
    session: Session, principal: Principal, key: str | None, write: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """`write()`'s answer, done at most once per key: an earlier answer is replayed, a new one
    is stored with the write's own transaction."""
    answer = replay(session, principal, key)
    if answer is None:
        answer = write()
        remember(session, principal, key, answer)
    return answer
