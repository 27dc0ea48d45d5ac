"""Run logs: numbered lines appended in batches, read by seq.

Two writers may append to one run's log: the scheduler (its system lines, and the output of
runs it executes itself) and, for a run on a remote executor (Ray), the run's node posting its
output over HTTP. `append_next` numbers a batch after the log's last line, inside a savepoint,
and numbers it again if the other writer took those numbers first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from darkroom.db.models import ACTIVE_STATUSES, LogLine
from darkroom.domain.accounts import Principal
from darkroom.domain.jobs import get_run
from darkroom.errors import Conflict, Forbidden

__all__ = [
    "Line",
    "append_lines",
    "append_next",
    "last_seq",
    "last_stderr_line",
    "list_lines",
    "record_run_output",
]

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


def append_next(
    session: Session, run_id: int, lines: Sequence[tuple[datetime, str, str]], attempts: int = 5
) -> int:
    """Appends (ts, stream, text) lines after the log's last one; answers the last seq."""
    for attempt in range(attempts):
        base = last_seq(session, run_id)
        numbered = [
            Line(base + i, ts, stream, text) for i, (ts, stream, text) in enumerate(lines, 1)
        ]
        try:
            with session.begin_nested():
                append_lines(session, run_id, numbered)
            return base + len(numbered)
        except IntegrityError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def record_run_output(
    session: Session, principal: Principal, run_id: int, lines: Sequence[tuple[datetime, str, str]]
) -> int:
    """Output a running run's node ships itself (a remote executor): its own token only."""
    if principal.run_id != run_id:
        raise Forbidden("only the run itself writes its log")
    run = get_run(session, principal, run_id)
    if run.status not in ACTIVE_STATUSES:
        raise Conflict(f"run {run_id} is {run.status}: its log is closed", code="run_finished")
    return append_next(session, run_id, lines)


def last_stderr_line(session: Session, run_id: int) -> str:
    """The last non-blank stderr line of a run's log ('' if none): a failed run's summary when
    its executor did not see the output itself."""
    text = session.scalar(
        select(LogLine.text)
        .where(LogLine.run_id == run_id, LogLine.stream == "stderr", LogLine.text != "")
        .order_by(LogLine.seq.desc())
        .limit(1)
    )
    return (text or "").strip()


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
