"""The local executor's standby: a sandbox started before its run, its runtime's imports done,
waiting on its stdin for the run it will be.

A run takes it by its order — its token and the few variables that name it, one JSON line on
the pipe — after its run-specific pieces (model weights, input links) were hard-linked into the
standby's own folders, which the sandbox already mounts. A standby serves one run; one that
could not take its run is discarded and the run starts cold.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from darkroom.engine.cgroups import RunCgroup, RunCgroups
from darkroom.engine.preparation import Prepared
from darkroom.engine.processes import STANDBY_RUN_FILE, signal_group
from darkroom.engine.run_environment import RUN_BLOBS
from darkroom.runtime.prepared import BLOBS_ENV
from darkroom.sources import BuiltinSource, InlineSource

__all__ = ["STANDBY_SOURCES", "Standby", "discard", "hand_over", "remove_standby_files"]

log = logging.getLogger(__name__)

STANDBY_SOURCES = (BuiltinSource, InlineSource)  # a bundle runs its own environment's interpreter


@dataclass
class Standby:
    """A sandboxed runtime started before its run, waiting on stdin for it."""

    process: subprocess.Popen[bytes]
    folder: Path  # host folder; its models/ is the sandbox's read-only models folder
    links: Path | None  # host folder of input links, the sandbox's read-only blobs folder
    cgroup: RunCgroup | None


def hand_over(standby: Standby, run_id: int, token: str, prepared: Prepared) -> bool:
    """Gives the standby its run; False when it cannot take it (the caller discards it)."""
    env = {"DARKROOM_RUN_ID": str(run_id)}
    if prepared.blobs is not None:
        env[BLOBS_ENV] = RUN_BLOBS
    order = json.dumps({"token": token, "env": env}).encode() + b"\n"
    try:
        if prepared.weights is not None:
            os.link(prepared.weights, standby.folder / "models" / prepared.weights.name)
        (standby.folder / STANDBY_RUN_FILE).write_text(str(run_id))
        assert standby.process.stdin is not None
        standby.process.stdin.write(order)
        standby.process.stdin.close()
    except (OSError, ValueError) as exc:
        log.info("run %s: standby unusable (%s), starting it cold", run_id, exc)
        return False
    return True


def discard(standby: Standby, keep_links: bool = False) -> None:
    """Ends the standby and removes its folders (but its input links when a run keeps them)."""
    signal_group(standby.process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        standby.process.wait(5)
    for pipe in (standby.process.stdin, standby.process.stdout, standby.process.stderr):
        if pipe is not None:
            pipe.close()
    remove_standby_files(standby.folder, None if keep_links else standby.links, standby.cgroup)


def remove_standby_files(folder: Path, links: Path | None, cgroup: RunCgroup | None) -> None:
    for path in (folder, links):
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)
    if cgroup is not None:
        RunCgroups.remove(cgroup)
