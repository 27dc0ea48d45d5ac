"""The server's background loops (serving's reconcile, the webhook sender): one daemon thread
each that calls `step()` every `period_s`, at once when woken, and survives a failing step."""

from __future__ import annotations

import logging
import threading

__all__ = ["Loop"]

log = logging.getLogger(__name__)


class Loop:
    """Subclasses define `step()` (and `finish()`, run on the thread once the loop ends)."""

    def __init__(self, name: str, period_s: float, *, after_error_s: float = 0.0) -> None:
        """`after_error_s`: a pause after a failing step (a database that is down)."""
        self.period_s, self.after_error_s = period_s, after_error_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def step(self) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """What the thread does when the loop ends (before `stop()` returns)."""

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Something changed: step now rather than at the next period."""
        self._wake.set()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:
                log.exception("%s: a step failed", self._thread.name)
                self._stop.wait(self.after_error_s)
            self._wake.wait(self.period_s)
            self._wake.clear()
        self.finish()
