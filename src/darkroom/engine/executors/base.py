"""The executor interface: start a run, poll it, stop it, read what it printed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from darkroom.domain.runs import Claimed

__all__ = ["Executor", "Handle", "OutputLine"]


@dataclass(frozen=True, slots=True)
class OutputLine:
    ts: datetime
    stream: str  # "stdout" | "stderr" | "system"
    text: str


class Handle(Protocol):
    run_id: int


class Executor(Protocol):
    """Runs claimed runs. `poll` answers the exit code once the run's process has ended and its
    output is fully read, else None. `cancel` asks nicely, then forces after `grace_s`."""

    name: str
    notify: Callable[[], None] | None
    """Called from any thread when a run needs its scheduler now, not at the next tick: its
    preparation finished, its process ended."""

    def check(self, source: dict) -> None:
        """Raises InvalidInput if this executor cannot run `source` (checked at launch)."""

    def start(self, claimed: Claimed, server_url: str) -> Handle: ...

    def poll(self, handle: Handle) -> int | None: ...

    def drain(self, handle: Handle) -> list[OutputLine]: ...

    def cancel(self, handle: Handle, grace_s: float) -> None: ...

    def kill(self, handle: Handle) -> None: ...

    def failure_reason(self, handle: Handle, code: int, last_stderr: str) -> str | None:
        """An error summary for a failed run when the executor knows better than its last
        stderr line (a limit it ran into)."""

    def leftover_runs(self) -> dict[int, list[int]]:
        """Processes of runs found on this machine, by run id (survivors of a killed worker)."""

    def kill_processes(self, pids: list[int]) -> None: ...

    def close(self) -> None: ...
