"""Figures runs record (`ctx.record_metrics`): numbers and JSON structures by name, per run.

A run on a deployment dates its figures by the end of its job's window, so the deployment's
page draws each number over time, one point per run; a re-run's figures sit beside the first
run's, as its logs do.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from darkroom.db.models import Job, Metric, utcnow
from darkroom.domain.accounts import Principal
from darkroom.domain.deployments import get_deployment
from darkroom.domain.jobs import get_run
from darkroom.errors import Forbidden, InvalidInput

__all__ = ["MetricPoint", "deployment_series", "record_metrics", "run_metrics"]

MAX_KEYS = 200
MAX_KEY_CHARS = 200
MAX_DATA_BYTES = 1024 * 1024
SERIES_POINTS = 500


@dataclass(frozen=True, slots=True)
class MetricPoint:
    key: str
    value: float
    at: datetime
    run_id: int
    job_id: int


def record_metrics(
    session: Session, principal: Principal, run_id: int, metrics: dict[str, Any]
) -> dict[str, Any]:
    """Stores `metrics` for the caller's own running run (its token); a name it recorded
    before is replaced. Numbers must be finite; structures at most 1 MiB of JSON each."""
    run = get_run(session, principal, run_id)
    if principal.run_id != run.id:
        raise Forbidden("only a run's own token records its metrics")
    if len(metrics) > MAX_KEYS:
        raise InvalidInput(f"at most {MAX_KEYS} metrics per call", details={"loc": ["metrics"]})
    rows = []
    for key, value in metrics.items():
        if not key or len(key) > MAX_KEY_CHARS:
            raise InvalidInput(f"a metric name has 1 to {MAX_KEY_CHARS} characters",
                               details={"loc": ["metrics", key[:50]]})  # fmt: skip
        number, data = _split(key, value)
        rows.append((key, number, data))
    job = session.get(Job, run.job_id)
    assert job is not None
    at = job.window_end or utcnow()
    session.execute(delete(Metric).where(Metric.run_id == run.id,
                                         Metric.key.in_([k for k, _, _ in rows])))  # fmt: skip
    for key, number, data in rows:
        session.add(Metric(run_id=run.id, job_id=job.id, deployment_id=job.target_deployment_id,
                           key=key, value=number, data=data, at=at))  # fmt: skip
    session.flush()
    return run_metrics(session, principal, run.id)


def _split(key: str, value: Any) -> tuple[float | None, Any]:
    if isinstance(value, bool):
        return float(value), None
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidInput(f"metric {key!r} is not a finite number",
                               details={"loc": ["metrics", key]})  # fmt: skip
        return float(value), None
    try:
        size = len(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"metric {key!r} is not JSON: {exc}",
                           details={"loc": ["metrics", key]}) from None  # fmt: skip
    if size > MAX_DATA_BYTES:
        raise InvalidInput(f"metric {key!r} is larger than 1 MiB of JSON",
                           details={"loc": ["metrics", key]})  # fmt: skip
    return None, value


def run_metrics(session: Session, principal: Principal, run_id: int) -> dict[str, Any]:
    """What a run recorded, by name (a number or its structure)."""
    run = get_run(session, principal, run_id)
    rows = session.scalars(select(Metric).where(Metric.run_id == run.id).order_by(Metric.key))
    return {m.key: m.value if m.value is not None else m.data for m in rows}


def deployment_series(
    session: Session, principal: Principal, deployment_id: int | str, key: str | None = None
) -> list[MetricPoint]:
    """The numbers runs on the deployment recorded, oldest first (the newest 500 points)."""
    deployment = get_deployment(session, principal, deployment_id)
    stmt = select(Metric.key, Metric.value, Metric.at, Metric.run_id, Metric.job_id).where(
        Metric.deployment_id == deployment.id, Metric.value.is_not(None)
    )
    if key is not None:
        stmt = stmt.where(Metric.key == key)
    rows = session.execute(stmt.order_by(Metric.at.desc(), Metric.id.desc()).limit(SERIES_POINTS))
    points = [MetricPoint(k, v, at, r, j) for k, v, at, r, j in rows]
    return points[::-1]
