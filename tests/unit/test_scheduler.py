"""The scheduler's cadence: output every tick, pending runs looked for only when it pays."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from darkroom.db.engine import make_engine, make_session_factory
from darkroom.domain import runs
from darkroom.engine.scheduler import Scheduler, SchedulerConfig


class IdleExecutor:
    """Never asked to start anything here: the database has no runs."""

    name = "idle"
    notify = None

    def leftover_runs(self) -> dict[int, list[int]]:
        return {}

    def gpus(self) -> None:
        return None

    def close(self) -> None:
        pass


@pytest.fixture
def claims(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """When the scheduler looked for pending runs (each look is a write transaction)."""
    seen: list[float] = []
    real = runs.claim_runs

    def counting(*args, **kwargs):
        seen.append(time.monotonic())
        return real(*args, **kwargs)

    monkeypatch.setattr(runs, "claim_runs", counting)
    return seen


def test_idle_scheduler_looks_for_runs_every_claim_s_and_at_once_when_woken(
    tmp_path: Path, sqlite_template: Path, claims: list[float]
) -> None:
    shutil.copy(sqlite_template, tmp_path / "db.db")
    sessions = make_session_factory(make_engine(f"sqlite:///{tmp_path / 'db.db'}"))
    config = SchedulerConfig(poll_s=0.01, claim_s=0.2)
    scheduler = Scheduler(sessions, IdleExecutor(), "http://unused", config)  # type: ignore[arg-type]
    scheduler.start()
    try:
        time.sleep(1.0)
        idle = len(claims)
        # 100 ticks went by; at most one look per claim_s (and the first tick's)
        assert 4 <= idle <= 7, claims
        woken_at = time.monotonic()
        scheduler.wake()
        time.sleep(0.05)
        assert any(t >= woken_at for t in claims[idle:]), "a wake-up looks at once"
    finally:
        scheduler.stop()
