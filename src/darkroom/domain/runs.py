"""Run transitions owned by the engine: claim, heartbeat, progress, finish, recover lost runs.

Every transition is one conditional statement, so two schedulers can never both move the same
run: a claim only takes `pending` rows (SKIP LOCKED on PostgreSQL, a single UPDATE on SQLite),
and a worker only finishes or heartbeats runs it still owns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from darkroom.db.models import ApiToken, ProcessingRevision, Run, RunStatus, utcnow
from darkroom.domain.accounts import Principal, create_run_token
from darkroom.domain.jobs import get_run
from darkroom.sources import Source

__all__ = [
    "Claimed",
    "cancel_requested",
    "claim_runs",
    "fail_lost_runs",
    "finish_run",
    "heartbeat",
    "report_progress",
    "running_among",
]

ERROR_SUMMARY_MAX = 1000


@dataclass(frozen=True, slots=True)
class Claimed:
    """What an executor needs to start a claimed run."""

    run_id: int
    job_id: int
    token: str
    timeout_s: int
    source: Source
    resources: dict = field(default_factory=dict)


def asked_gpus_column() -> ColumnElement[float]:
    """The GPUs a run's revision asks for (`resources.gpus`, 0 when it asks none), in SQL."""
    return func.coalesce(ProcessingRevision.resources["gpus"].as_float(), 0.0)


def claim_runs(
    session: Session, worker_id: str, limit: int, gpus: int | None = None
) -> list[Claimed]:
    """Atomically moves up to `limit` pending runs to running for `worker_id`, oldest first.
    `gpus`: the worker's free GPUs; it then takes runs asking for no more than that, one GPU
    run per call (None: its executor places GPU runs itself and takes any run)."""
    if limit <= 0:
        return []
    if gpus is None:
        return _claim(session, worker_id, limit, None)
    asked = asked_gpus_column()
    claimed = _claim(session, worker_id, 1, (asked > 0) & (asked <= gpus)) if gpus > 0 else []
    return claimed + _claim(session, worker_id, limit - len(claimed), asked <= 0)


def _claim(
    session: Session, worker_id: str, limit: int, only: ColumnElement[bool] | None
) -> list[Claimed]:
    if limit <= 0:
        return []
    now = utcnow()
    oldest = select(Run.id).where(Run.status == RunStatus.pending)
    if only is not None:
        oldest = oldest.join(ProcessingRevision, ProcessingRevision.id == Run.revision_id)
        oldest = oldest.where(only)
    oldest = oldest.order_by(Run.queued_at, Run.id).limit(limit)
    claim = update(Run).values(
        status=RunStatus.running, worker_id=worker_id, started_at=now, heartbeat_at=now
    )
    if session.get_bind().dialect.name == "postgresql":
        # A CTE is evaluated once; a `WHERE id IN (… SKIP LOCKED)` subquery may be re-run per
        # row by the planner and hand one worker more runs than `limit`.
        picked = oldest.with_for_update(skip_locked=True, of=Run).cte("picked")
        claim = claim.where(Run.id == picked.c.id)
    else:  # SQLite: one writer at a time, the statement is atomic as it is
        claim = claim.where(Run.id.in_(oldest.scalar_subquery()), Run.status == RunStatus.pending)
    ids = list(session.scalars(claim.returning(Run.id)))
    claimed = []
    for run in session.scalars(select(Run).where(Run.id.in_(ids)).order_by(Run.id)):
        token = create_run_token(session, run, run.job.created_by)
        revision = run.revision
        resources = dict(revision.resources or {})
        claimed.append(
            Claimed(run.id, run.job_id, token, revision.timeout_s, revision.source, resources)
        )
    session.flush()
    return claimed


def running_among(session: Session, run_ids: list[int]) -> set[int]:
    """Those of `run_ids` whose status is running."""
    stmt = select(Run.id).where(Run.id.in_(run_ids), Run.status == RunStatus.running)
    return set(session.scalars(stmt))


def heartbeat(session: Session, worker_id: str, run_ids: list[int]) -> set[int]:
    """Refreshes the lease of runs `worker_id` still owns; returns those it owns."""
    if not run_ids:
        return set()
    owned = session.scalars(
        update(Run)
        .where(Run.id.in_(run_ids), Run.worker_id == worker_id, Run.status == RunStatus.running)
        .values(heartbeat_at=utcnow())
        .returning(Run.id)
    )
    return set(owned)


def finish_run(
    session: Session,
    run_id: int,
    worker_id: str,
    status: RunStatus,
    *,
    exit_code: int | None = None,
    reason: str | None = None,
    error_summary: str | None = None,
) -> bool:
    """Ends a run the worker owns; False when it was not its to end (e.g. marked lost)."""
    done = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.worker_id == worker_id, Run.status == RunStatus.running)
        .values(
            status=status,
            finished_at=utcnow(),
            exit_code=exit_code,
            failure_reason=reason,
            error_summary=(error_summary or None) and error_summary[:ERROR_SUMMARY_MAX],
        )
        .returning(Run.id)
    ).first()
    _revoke_tokens(session, [run_id])
    if done is not None:
        from darkroom.domain.pipelines import after_run_succeeded
        from darkroom.domain.webhooks import on_runs_ended

        if status == RunStatus.succeeded:
            after_run_succeeded(session, run_id)  # a pipeline's next steps, in this transaction
        on_runs_ended(session, [run_id])  # then what the webhooks owe, the next steps known
    return done is not None


def fail_lost_runs(session: Session, lease_s: float) -> list[int]:
    """Fails running runs whose heartbeat is older than the lease (their worker is gone)."""
    deadline = utcnow() - timedelta(seconds=lease_s)
    lost = list(
        session.scalars(
            update(Run)
            .where(Run.status == RunStatus.running, Run.heartbeat_at < deadline)
            .values(
                status=RunStatus.failed,
                finished_at=utcnow(),
                failure_reason="lost",
                error_summary=f"lost: no heartbeat from worker for {lease_s:g} s",
            )
            .returning(Run.id)
        )
    )
    _revoke_tokens(session, lost)
    if lost:
        from darkroom.domain.webhooks import on_runs_ended

        on_runs_ended(session, lost)
    return lost


def _revoke_tokens(session: Session, run_ids: list[int]) -> None:
    if run_ids:
        session.execute(
            update(ApiToken)
            .where(ApiToken.run_id.in_(run_ids), ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )


def cancel_requested(session: Session, worker_id: str) -> set[int]:
    """Runs of `worker_id` whose cancellation was asked for."""
    return set(
        session.scalars(
            select(Run.id).where(
                Run.worker_id == worker_id,
                Run.status == RunStatus.running,
                Run.cancel_requested_at.is_not(None),
            )
        )
    )


def report_progress(
    session: Session, principal: Principal, run_id: int, done: int, total: int | None
) -> Run:
    """Progress reported by the run's own code, through its token."""
    run = get_run(session, principal, run_id)
    run.progress_done = max(0, done)
    run.progress_total = total if total is None or total >= 0 else None
    session.flush()
    return run
