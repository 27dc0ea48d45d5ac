"""Running time used by an organization over a period, by processing and by who launched it.

The figures are the runs' own timings (started to finished, or to now for a run still running),
so the page shows what a bill by compute time would count. Runs that never started (cancelled
while pending) used nothing and are left out.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from darkroom.db.models import Job, Processing, Run, RunStatus, utcnow
from darkroom.domain.accounts import Principal, user_names

__all__ = ["Usage", "UsageRow", "usage_since"]


@dataclass(slots=True)
class UsageRow:
    name: str
    runs: int = 0
    failed: int = 0
    seconds: float = 0.0


@dataclass(slots=True)
class Usage:
    since: datetime
    total_seconds: float = 0.0
    runs: int = 0
    by_processing: list[UsageRow] = field(default_factory=list)
    by_user: list[UsageRow] = field(default_factory=list)


def usage_since(session: Session, principal: Principal, since: datetime) -> Usage:
    """What the organization's runs started since `since` used, heaviest first."""
    stmt = (
        select(Run.started_at, Run.finished_at, Run.status, Processing.name, Job.created_by)
        .join(Job, Job.id == Run.job_id)
        .join(Processing, Processing.id == Job.processing_id)
        .where(Job.organization_id == principal.organization_id, Run.started_at >= since)
    )
    now = utcnow()
    names = user_names(session, principal)
    by_processing: dict[str, UsageRow] = defaultdict(lambda: UsageRow(""))
    by_user: dict[str, UsageRow] = defaultdict(lambda: UsageRow(""))
    out = Usage(since=since)
    for started, finished, status, processing, user_id in session.execute(stmt):
        seconds = max(0.0, ((finished or now) - started).total_seconds())
        who = names.get(user_id, f"user {user_id}")
        for key, table in ((processing, by_processing), (who, by_user)):
            row = table[key]
            row.name = key
            row.runs += 1
            row.failed += status == RunStatus.failed
            row.seconds += seconds
        out.total_seconds += seconds
        out.runs += 1
    out.by_processing = sorted(by_processing.values(), key=lambda r: (-r.seconds, r.name))
    out.by_user = sorted(by_user.values(), key=lambda r: (-r.seconds, r.name))
    return out
