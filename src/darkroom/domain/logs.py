"""Run logs: numbered lines appended by the engine in batches, read by seq."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from darkroom.db.models import LogLine
from darkroom.domain.accounts import Principal
from darkroom.domain.jobs import get_run

__all__ = ["Line", "append_lines", "last_seq", "list_lines"]

MAX_LINE_CHARS = 10_000


@dataclass(frozen=True, slots=True)
class Line:
    seq: int
    ts: datetime
    stream: str
    text: str


def last_seq(session: Session, run_id: int) -> int:
    """The highest seq of a run's log, 0 when it has none (seqs start at 1)."""
    return (
        session.scalar(
            select(func.coalesce(func.max(LogLine.seq), 0)).where(LogLine.run_id == run_id)
        )
        or 0
    )


def append_lines(session: Session, run_id: int, lines: Sequence[Line]) -> None:
    if lines:
        session.execute(
            insert(LogLine.__table__),
            [{"run_id": run_id, "seq": x.seq, "ts": x.ts, "stream": x.stream,
              "text": x.text[:MAX_LINE_CHARS]} for x in lines],
        )  # fmt: skip


def list_lines(
    session: Session, principal: Principal, run_id: int, after: int = 0, limit: int = 1000
) -> list[Line]:
    get_run(session, principal, run_id)
    rows = session.scalars(
        select(LogLine)
        .where(LogLine.run_id == run_id, LogLine.seq > after)
        .order_by(LogLine.seq)
        .limit(limit)
    )
    return [Line(r.seq, r.ts, r.stream, r.text) for r in rows]
