"""The executor interface: start a run, poll it, stop it, read what it printed."""

from __future__ import annotations

import queue
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from darkroom.domain.runs import Claimed
from darkroom.errors import InvalidInput
from darkroom.sources import ImageSource, Source
from darkroom.values import utcnow

__all__ = [
    "IMAGE_EXECUTORS",
    "RUNNABLE_SOURCES",
    "Executor",
    "Failure",
    "Handle",
    "OutputLine",
    "check_python_source",
    "drain_lines",
    "read_lines",
]

RUNNABLE_SOURCES = ("builtin", "inline", "bundle")
# Executors of this release that run container images: none yet (a Kubernetes or Docker
# executor would be listed here); image sources are stored and shown, and refused at launch.
IMAGE_EXECUTORS: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a run failed, when its executor knows better than its last stderr line: the error
    summary, and the run's `failure_reason` when it is more precise than the exit's (e.g.
    `memory`)."""

    summary: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class OutputLine:
    ts: datetime
    stream: str  # "stdout" | "stderr" | "system"
    text: str


class Handle(Protocol):
    """A started run, as the scheduler reads it."""

    run_id: int

    @property
    def lost(self) -> bool:
        """The executor lost track of the run: it fails as `lost`."""

    @property
    def queued(self) -> bool:
        """The run waits in the executor's own queue: its timeout does not count yet."""


class Executor(Protocol):
    """Runs claimed runs. `poll` answers the exit code once the run's process has ended and its
    output is fully read, else None. `cancel` asks nicely, then forces after `grace_s`."""

    name: str
    notify: Callable[[], None] | None
    """Called from any thread when a run needs its scheduler now, not at the next tick: its
    preparation finished, its process ended."""

    def check(self, source: Source) -> None:
        """Raises InvalidInput if this executor cannot run `source` (checked at launch)."""

    def start(self, claimed: Claimed, server_url: str) -> Handle: ...

    def poll(self, handle: Handle) -> int | None: ...

    def drain(self, handle: Handle) -> list[OutputLine]: ...

    def cancel(self, handle: Handle, grace_s: float) -> None: ...

    def kill(self, handle: Handle) -> None: ...

    def failure_reason(self, handle: Handle, code: int, last_stderr: str) -> Failure | None:
        """Why a failed run failed when the executor knows better than its last stderr line
        (a limit it ran into)."""

    def leftover_runs(self) -> dict[int, list[int]]:
        """Processes of runs found on this machine, by run id (survivors of a killed worker)."""

    def kill_processes(self, pids: list[int]) -> None: ...

    def gpus(self) -> tuple[int, int] | None:
        """(GPUs, free GPUs) this executor lends to runs; None when it places runs asking for
        GPUs itself (Ray) and the scheduler may claim any run."""

    def close(self) -> None: ...


def drain_lines(lines: queue.SimpleQueue[OutputLine]) -> list[OutputLine]:
    """What a run's queue holds now, oldest first (an executor's `drain`)."""
    out = []
    while True:
        try:
            out.append(lines.get_nowait())
        except queue.Empty:
            return out


def read_lines(
    pipe: object,
    stream: str,
    out: queue.SimpleQueue[OutputLine],
    ended: Callable[[], None] | None = None,
) -> None:
    """Queues each line of a run's `stream` (a reader thread's loop) until the pipe closes,
    then calls `ended`."""
    for raw in iter(pipe.readline, b""):  # type: ignore[attr-defined]
        out.put(OutputLine(utcnow(), stream, raw.decode("utf-8", "replace").rstrip("\r\n")))
    pipe.close()  # type: ignore[attr-defined]
    if ended is not None:
        ended()


def check_python_source(executor: str, source: Source) -> None:
    """Refuses (at launch) a source the local and Ray executors cannot run: they run Python
    sources (built-in, inline, bundle), and no executor of this release runs images."""
    if isinstance(source, ImageSource):
        can = ", ".join(IMAGE_EXECUTORS) or "none is available in this darkroom"
        raise InvalidInput(
            f"this processing runs the container image {source.image!r}, and this "
            f"server's executor {executor!r} runs Python sources only "
            f"({', '.join(RUNNABLE_SOURCES)}). Executors that can run images: {can}. "
            "Push the code as a bundle instead.",
            code="executor_unsupported",
            details={"executor": executor, "runs": list(RUNNABLE_SOURCES),
                     "image_executors": list(IMAGE_EXECUTORS)},
        )  # fmt: skip
    if source.kind not in RUNNABLE_SOURCES:
        raise InvalidInput(
            f"the {executor} executor cannot run a {source.kind!r} source "
            f"(it runs: {', '.join(RUNNABLE_SOURCES)})",
            code="executor_unsupported",
        )
