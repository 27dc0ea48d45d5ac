"""The scheduler: claims pending runs, starts them on an executor, and watches them.

One loop per worker process (`darkroom worker`, or a thread of `darkroom serve`). Each tick it
moves finished processes' output into the log and ends runs whose process exited. It claims new
runs up to `max_concurrent` when woken (a launch in this process, a run's end) or every
`claim_s`: looking costs a write transaction, 6 % of a core at every tick. Less often it
applies cancellations and timeouts, refreshes the lease of its runs and fails runs whose
worker stopped heartbeating (`lost`).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from darkroom.db.engine import SessionFactory, session_scope
from darkroom.db.models import RunStatus, utcnow
from darkroom.domain import logs, runs, triggers, workers
from darkroom.domain.runs import Claimed
from darkroom.engine.executors.base import Executor, Handle, OutputLine

__all__ = ["Scheduler", "SchedulerConfig", "new_worker_id"]

log = logging.getLogger(__name__)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    max_concurrent: int = 2
    lease_s: float = 60.0  # a run whose heartbeat is older is failed as lost
    heartbeat_s: float = 10.0
    poll_s: float = 0.05  # tick period: how soon a run's output and exit are taken in
    # How often pending runs are looked for when nothing woke the scheduler: runs launched by
    # this process and slots freed here wake it at once; this bounds the latency of runs
    # launched elsewhere (by another server, for `darkroom worker`).
    claim_s: float = 0.2
    housekeeping_s: float = 0.5  # cancellations, timeouts
    triggers_s: float = 0.25  # how often triggers are looked at (0: never, from this scheduler)
    cancel_grace_s: float = 10.0  # SIGTERM → SIGKILL
    log_flush_s: float = 0.2
    log_batch_lines: int = 500


@dataclass
class _Active:
    claimed: Claimed
    handle: Handle
    started: float
    buffer: list[OutputLine] = field(default_factory=list)
    last_flush: float = 0.0
    last_stderr: str = ""
    outcome: str | None = None  # "cancelled" or "timeout" once the engine stops it


class Scheduler:
    """Claims and runs runs for one worker; `run()` until `stop()`."""

    def __init__(
        self,
        sessions: SessionFactory,
        executor: Executor,
        server_url: str,
        config: SchedulerConfig | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.executor = executor
        self.server_url = server_url
        self.config = config or SchedulerConfig()
        self.worker_id = worker_id or new_worker_id()
        self._active: dict[int, _Active] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_housekeeping = 0.0
        self._last_heartbeat = 0.0
        self._last_claim = 0.0
        self._last_triggers = 0.0
        self._woken = True
        executor.notify = self.wake  # see Executor.notify

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Runs the loop in a daemon thread (how `darkroom serve` hosts it)."""
        self._thread = threading.Thread(target=self.run, name="darkroom-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def wake(self) -> None:
        """Claims at once instead of at the next tick (called after a launch in-process)."""
        self._wake.set()

    def run(self) -> None:
        log.info("scheduler %s started (max %d runs)", self.worker_id, self.config.max_concurrent)
        try:
            self.end_leftovers()
        except Exception:
            log.exception("could not look for leftover run processes")
        try:
            with session_scope(self.sessions) as session:
                self._advertise(session)
        except Exception:
            log.exception("could not advertise worker %s", self.worker_id)
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the loop must survive a database hiccup
                log.exception("scheduler tick failed")
                time.sleep(1)
            self._woken = self._wake.wait(self.config.poll_s)
            self._wake.clear()
        self._shutdown()

    def end_leftovers(self, runs_to_end: set[int] | None = None) -> list[int]:
        """Kills processes on this machine of runs that are no longer running (a worker killed
        with -9 before its runs could be stopped); with `runs_to_end`, of those runs only."""
        found = self.executor.leftover_runs()
        found = {r: pids for r, pids in found.items() if r not in self._active}
        if runs_to_end is not None:
            found = {r: pids for r, pids in found.items() if r in runs_to_end}
        if not found:
            return []
        with session_scope(self.sessions) as session:
            running = runs.running_among(session, list(found))
        ended = []
        for run_id, pids in found.items():
            if run_id not in running or runs_to_end is not None:
                log.warning("run %s: killing leftover processes %s", run_id, pids)
                self.executor.kill_processes(pids)
                ended.append(run_id)
        return ended

    # -- one pass ---------------------------------------------------------------------------

    def tick(self) -> None:
        now = time.monotonic()
        freed = False
        for active in list(self._active.values()):
            if self._reap(active):
                freed = True
            elif now - active.last_flush >= self.config.log_flush_s:
                self._flush(active)
        if now - self._last_housekeeping >= self.config.housekeeping_s:
            self._last_housekeeping = now
            self._housekeeping(now)
        if self.config.triggers_s and now - self._last_triggers >= self.config.triggers_s:
            self._last_triggers = now
            if triggers.fire_due(self.sessions):
                self._woken = True  # what they launched is claimable now
        if freed or self._woken or now - self._last_claim >= self.config.claim_s:
            self._last_claim = now
            self._claim()

    def _reap(self, active: _Active) -> bool:
        """Takes in the run's output and ends it if its process exited; True when it ended."""
        self._collect_output(active)
        code = self.executor.poll(active.handle)
        if code is None:
            return False
        self._collect_output(active)
        self._finish(active, code)
        return True

    def _collect_output(self, active: _Active) -> None:
        for line in self.executor.drain(active.handle):
            active.buffer.append(line)
            if line.stream == "stderr" and line.text.strip():
                active.last_stderr = line.text.strip()
        if len(active.buffer) >= self.config.log_batch_lines:
            self._flush(active)

    def _flush(self, active: _Active) -> None:
        active.last_flush = time.monotonic()
        if not active.buffer:
            return
        batch = [(line.ts, line.stream, line.text) for line in active.buffer]
        active.buffer.clear()
        with session_scope(self.sessions) as session:  # numbered after what a node shipped
            logs.append_next(session, active.claimed.run_id, batch)

    def _system_line(self, active: _Active, text: str) -> None:
        active.buffer.append(OutputLine(utcnow(), "system", text))

    def _claim(self) -> None:
        free = self.config.max_concurrent - len(self._active)
        if free <= 0 or self._stop.is_set():
            return
        gpus = self.executor.gpus()
        with session_scope(self.sessions) as session:
            claimed = runs.claim_runs(session, self.worker_id, free,
                                      None if gpus is None else gpus[1])  # fmt: skip
        for c in claimed:
            self._start(c)

    def _start(self, claimed: Claimed) -> None:
        try:
            self.executor.check(claimed.source)
            handle = self.executor.start(claimed, self.server_url)
        except Exception as exc:
            log.exception("could not start run %s", claimed.run_id)
            with session_scope(self.sessions) as session:
                runs.finish_run(
                    session,
                    claimed.run_id,
                    self.worker_id,
                    RunStatus.failed,
                    reason="start",
                    error_summary=f"could not start: {exc}",
                )
            return
        active = _Active(claimed, handle, time.monotonic())
        self._system_line(active, f"run {claimed.run_id} started on worker {self.worker_id}")
        self._active[claimed.run_id] = active

    def _finish(self, active: _Active, code: int) -> None:
        run_id = active.claimed.run_id
        took = time.monotonic() - active.started
        status, reason, summary = RunStatus.failed, "error", None
        if active.outcome == "cancelled":
            status, reason, summary = RunStatus.cancelled, "cancelled", "cancelled by request"
        elif active.outcome == "interrupted":
            reason, summary = "interrupted", "interrupted: its worker was stopped"
            self._system_line(active, "worker stopping: run interrupted")
        elif active.outcome == "timeout":
            reason = "timeout"
            summary = f"timeout: ran longer than {active.claimed.timeout_s} s"
        elif code == 0:
            status, reason = RunStatus.succeeded, None
        elif active.handle.lost:
            reason = "lost"
        elif code < 0:
            reason = "killed"
            summary = f"killed by {signal.Signals(-code).name}"
        else:
            summary = active.last_stderr or self._shipped_stderr(run_id) or f"exit code {code}"
        if status == RunStatus.failed and active.outcome is None:
            why = self.executor.failure_reason(active.handle, code, active.last_stderr)
            if why:
                summary, reason = why.summary, why.reason or reason
                self._system_line(active, f"run {run_id} {why.summary}")
        self._system_line(active, f"run {run_id} {status} (exit code {code}) after {took:.2f} s")
        self._flush(active)
        with session_scope(self.sessions) as session:
            owned = runs.finish_run(
                session,
                run_id,
                self.worker_id,
                status,
                exit_code=code,
                reason=reason,
                error_summary=summary,
            )
        if not owned:
            log.warning("run %s ended here but was no longer ours (marked lost?)", run_id)
        del self._active[run_id]

    def _shipped_stderr(self, run_id: int) -> str:
        """The last stderr line a remote node shipped into the log (the executor saw none)."""
        with session_scope(self.sessions) as session:
            return logs.last_stderr_line(session, run_id)

    def _housekeeping(self, now: float) -> None:
        with session_scope(self.sessions) as session:
            to_cancel = runs.cancel_requested(session, self.worker_id) if self._active else set()
            owned: set[int] | None = None
            if now - self._last_heartbeat >= self.config.heartbeat_s:
                self._last_heartbeat = now
                owned = runs.heartbeat(session, self.worker_id, list(self._active))
                self._advertise(session)
            lost = runs.fail_lost_runs(session, self.config.lease_s)
        if lost:
            log.warning("runs %s lost their worker; marked failed", lost)
            self.end_leftovers(set(lost))
        for run_id, active in list(self._active.items()):
            if owned is not None and run_id not in owned:
                log.warning("run %s is no longer ours; killing its process", run_id)
                self.executor.kill(active.handle)
                del self._active[run_id]
            elif run_id in to_cancel and active.outcome is None:
                active.outcome = "cancelled"
                self._system_line(active, "cancel requested: stopping (SIGTERM, then SIGKILL)")
                self.executor.cancel(active.handle, self.config.cancel_grace_s)
            elif active.handle.queued:  # its timeout counts from when it runs
                active.started = now
            elif active.outcome is None and now - active.started > active.claimed.timeout_s:
                active.outcome = "timeout"
                self._system_line(active, f"timeout after {active.claimed.timeout_s} s: stopping")
                self.executor.cancel(active.handle, self.config.cancel_grace_s)

    def _advertise(self, session: Session) -> None:
        """Says what this worker can take (see `domain.workers`), its GPUs included."""
        gpus = self.executor.gpus() or (0, 0)
        workers.advertise(session, workers.WorkerInfo(
            self.worker_id, socket.gethostname(), self.executor.name,
            self.config.max_concurrent, gpus[0], gpus[1],
        ))  # fmt: skip

    def _shutdown(self) -> None:
        """Stops this worker's runs and fails them as interrupted."""
        for active in self._active.values():
            active.outcome = active.outcome or "interrupted"
            self.executor.cancel(active.handle, grace_s=5)
        deadline = time.monotonic() + 10
        while self._active and time.monotonic() < deadline:
            for active in list(self._active.values()):
                self._reap(active)
            time.sleep(0.05)
        self.executor.close()
        try:
            with session_scope(self.sessions) as session:
                workers.forget(session, self.worker_id)
        except Exception:
            log.exception("could not remove worker %s", self.worker_id)
