"""Workers: the schedulers that claim runs, as each advertises itself.

A scheduler writes its row when it starts and again at each heartbeat: its executor, its run
slots and its GPUs (with how many are free), so that a run nothing can take says why it waits
(a GPU no worker has) and `GET /workers` shows what the cluster can run. A worker that stops
removes its row; one killed is no longer listed once its `seen_at` is older than a lease.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from darkroom.db.models import Worker, utcnow

__all__ = ["WorkerInfo", "advertise", "forget", "gpu_workers", "live_workers"]

FORGOTTEN_AFTER = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """What a worker says of itself."""

    id: str
    hostname: str
    executor: str
    slots: int
    gpus: int = 0
    gpus_free: int = 0


def advertise(session: Session, info: WorkerInfo) -> None:
    """Writes (or refreshes) the worker's row; rows unseen for a day go."""
    now = utcnow()
    row = session.get(Worker, info.id)
    if row is None:
        session.add(Worker(id=info.id, hostname=info.hostname, executor=info.executor,
                           slots=info.slots, gpus=info.gpus, gpus_free=info.gpus_free,
                           started_at=now, seen_at=now))  # fmt: skip
        session.execute(delete(Worker).where(Worker.seen_at < now - FORGOTTEN_AFTER))
    else:
        row.hostname, row.executor, row.slots = info.hostname, info.executor, info.slots
        row.gpus, row.gpus_free, row.seen_at = info.gpus, info.gpus_free, now
    session.flush()


def forget(session: Session, worker_id: str) -> None:
    session.execute(delete(Worker).where(Worker.id == worker_id))


def live_workers(session: Session, within_s: float) -> list[Worker]:
    """Workers seen in the last `within_s` seconds, the most recently started first."""
    since = utcnow() - timedelta(seconds=within_s)
    stmt = select(Worker).where(Worker.seen_at >= since).order_by(Worker.started_at.desc())
    return list(session.scalars(stmt))


def gpu_workers(session: Session, gpus: int, within_s: float) -> tuple[int, int]:
    """(workers seen in the last `within_s` seconds, those of them that can take a run asking
    for `gpus`: as many GPUs, free or not, or a Ray executor, which places such runs itself)."""
    seen = live_workers(session, within_s)
    return len(seen), sum(1 for w in seen if w.executor == "ray" or w.gpus >= gpus)
