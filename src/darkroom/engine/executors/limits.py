"""A run's limits on this machine: the rlimits set before it execs (`prlimit`), and which limit
a failed run ran into, from its exit, its cgroup's counters and its last error lines."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal

from darkroom.domain.resources import RunResources, format_bytes
from darkroom.engine.executors.base import Failure

__all__ = ["MEMORY_SIGNS", "limit_failure", "limit_prefix"]

log = logging.getLogger(__name__)

# What an allocation failure prints in Python, C++, glibc, numpy and onnxruntime.
MEMORY_SIGNS = ("MemoryError", "bad_alloc", "Cannot allocate memory", "Failed to allocate",
                "out of memory")  # fmt: skip


def limit_prefix(limits: RunResources) -> list[str]:
    """`prlimit` options that set the run's rlimits before it execs the run (or its sandbox)."""
    prlimit = shutil.which("prlimit")
    options = []
    if limits.memory_bytes:
        options.append(f"--data={limits.memory_bytes}:{limits.memory_bytes}")
    if limits.cpu_time_s:
        options.append(f"--cpu={limits.cpu_time_s}:{limits.cpu_time_s + 5}")
    if not options:
        return []
    if prlimit is None:
        log.warning("prlimit (util-linux) is missing: runs are not memory/CPU limited")
        return []
    return [prlimit, *options, "--"]


def limit_failure(
    limits: RunResources, code: int, last_stderr: str, hit: str | None = None
) -> Failure | None:
    """The limit a run that exited with `code` ran into, if one did; `hit` is the limit its
    cgroup counted it over as a whole ("processes" or "memory")."""
    if code == -signal.SIGXCPU and limits.cpu_time_s:
        return Failure(f"exceeded its CPU time limit of {limits.cpu_time_s} s")
    if code != 0 and hit == "processes":
        return Failure(f"exceeded its process limit of {limits.processes}")
    if code != 0 and limits.memory_bytes and hit == "memory":
        return Failure(f"exceeded its memory limit of {format_bytes(limits.memory_bytes)} "
                       "(the kernel killed it: its processes and shared memory count as "
                       "one)", reason="memory")  # fmt: skip
    if code != 0 and limits.memory_bytes and any(s in last_stderr for s in MEMORY_SIGNS):
        return Failure(f"exceeded its memory limit of {format_bytes(limits.memory_bytes)} "
                       f"({last_stderr[:200]})", reason="memory")  # fmt: skip
    if code != 0 and limits.disk_bytes and os.strerror(errno.ENOSPC) in last_stderr:
        return Failure(f"exceeded its temporary disk limit of "
                       f"{format_bytes(limits.disk_bytes)}")  # fmt: skip
    return None
