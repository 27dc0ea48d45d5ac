"""The local executor: one subprocess per run, in its own process group.

`python -m darkroom.runtime` runs with the run's token in its environment. Two reader threads
turn stdout and stderr into timestamped lines; the scheduler drains them into the run's log.
Cancelling sends SIGTERM to the whole group, then SIGKILL after the grace period, so a
processing's own children go too.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from darkroom.db.models import utcnow
from darkroom.domain.runs import Claimed
from darkroom.engine.executors.base import OutputLine
from darkroom.errors import InvalidInput

__all__ = ["LocalExecutor", "LocalHandle", "run_environment"]

RUNNABLE_SOURCES = ("builtin", "inline", "bundle")
# Executors of this release that run container images: none yet (a Kubernetes or Docker
# executor would be listed here); image sources are stored and shown, and refused at launch.
IMAGE_EXECUTORS: tuple[str, ...] = ()
# What a run keeps of the server's DARKROOM_* settings (the runtime's own), and what it loses of
# the rest of the environment.
RUN_SETTINGS = frozenset({"DARKROOM_CACHE", "DARKROOM_ENV_MAX_AGE_DAYS", "DARKROOM_ENV_MAX_BYTES"})
STORAGE_SECRETS = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                             "PGPASSWORD"})  # fmt: skip


@dataclass
class LocalHandle:
    run_id: int
    process: subprocess.Popen[bytes]
    lines: queue.SimpleQueue[OutputLine] = field(default_factory=queue.SimpleQueue)
    readers: list[threading.Thread] = field(default_factory=list)
    kill_at: float | None = None  # monotonic time to SIGKILL after a SIGTERM


class LocalExecutor:
    name = "local"

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python

    def check(self, source: dict) -> None:
        if source.get("kind") == "image":
            can = ", ".join(IMAGE_EXECUTORS) or "none is available in this darkroom"
            raise InvalidInput(
                f"this processing runs the container image {source.get('image')!r}, and this "
                "server's executor 'local' runs Python sources only "
                f"({', '.join(RUNNABLE_SOURCES)}). Executors that can run images: {can}. "
                "Push the code as a bundle instead.",
                code="executor_unsupported",
                details={"executor": self.name, "runs": list(RUNNABLE_SOURCES),
                         "image_executors": list(IMAGE_EXECUTORS)},
            )  # fmt: skip
        if source.get("kind") not in RUNNABLE_SOURCES:
            raise InvalidInput(
                f"the local executor cannot run a {source.get('kind')!r} source "
                f"(it runs: {', '.join(RUNNABLE_SOURCES)})",
                code="executor_unsupported",
            )

    def start(self, claimed: Claimed, server_url: str) -> LocalHandle:
        env = {
            **run_environment(os.environ),
            "DARKROOM_URL": server_url,
            "DARKROOM_RUN_TOKEN": claimed.token,
            "DARKROOM_RUN_ID": str(claimed.run_id),
            "PYTHONUNBUFFERED": "1",
        }
        process = subprocess.Popen(
            [self.python, "-m", "darkroom.runtime"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # its own process group, for cancel and timeout
        )
        handle = LocalHandle(claimed.run_id, process)
        for name, pipe in (("stdout", process.stdout), ("stderr", process.stderr)):
            reader = threading.Thread(
                target=_read_lines, args=(pipe, name, handle.lines), daemon=True,
                name=f"run-{claimed.run_id}-{name}",
            )  # fmt: skip
            reader.start()
            handle.readers.append(reader)
        return handle

    def poll(self, handle: LocalHandle) -> int | None:
        code = handle.process.poll()
        if code is None:
            if handle.kill_at is not None and time.monotonic() >= handle.kill_at:
                self.kill(handle)
            return None
        for reader in handle.readers:
            reader.join(timeout=5)
        return code

    def drain(self, handle: LocalHandle) -> list[OutputLine]:
        out = []
        while True:
            try:
                out.append(handle.lines.get_nowait())
            except queue.Empty:
                return out

    def cancel(self, handle: LocalHandle, grace_s: float) -> None:
        if handle.kill_at is None:
            _signal_group(handle.process, signal.SIGTERM)
            handle.kill_at = time.monotonic() + grace_s

    def kill(self, handle: LocalHandle) -> None:
        _signal_group(handle.process, signal.SIGKILL)


def run_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The server's environment minus its secrets: a processing acts with its run token only,
    so it gets neither the admin or user tokens, nor the database URL, nor storage credentials."""
    return {
        key: value for key, value in environ.items()
        if not (key.startswith("DARKROOM_") and key not in RUN_SETTINGS)
        and key not in STORAGE_SECRETS
    }  # fmt: skip


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _read_lines(pipe: object, stream: str, out: queue.SimpleQueue[OutputLine]) -> None:
    for raw in iter(pipe.readline, b""):  # type: ignore[attr-defined]
        out.put(OutputLine(utcnow(), stream, raw.decode("utf-8", "replace").rstrip("\r\n")))
    pipe.close()  # type: ignore[attr-defined]
