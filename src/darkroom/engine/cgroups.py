"""A run's process and memory limits as a whole, from cgroups, where this darkroom may use them.

rlimits are per process: RLIMIT_NPROC counts every process of the user (and nothing for root),
and RLIMIT_DATA neither counts shared memory (`mmap(MAP_SHARED)`, tmpfs) nor adds up a run's
children, so a run limited to 512 MiB could touch gigabytes. Each run therefore gets its own
cgroup under darkroom's own in the v1 `pids` and `memory` hierarchies, joined before the run's
first process execs: `pids.max` bounds its processes; `memory.limit_in_bytes` (and the same
`memory.memsw.limit_in_bytes`: no escape into swap) bounds everything it touches, shared maps
and tmpfs pages included. cgroup v1 has no group OOM kill, so the executor watches the
memory cgroup's `oom_kill` count and ends the whole run at the first kill: a run over its
memory fails with reason `memory`, not with one child missing. This needs writable v1
hierarchies (root, or a delegated tree); where one is missing its limit is reported as not
enforced, once, and the rlimits alone apply.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunCgroup", "RunCgroups"]

log = logging.getLogger(__name__)
V1 = Path("/sys/fs/cgroup")
JOIN = 'for f; do [ "$f" = -- ] && break; echo $$ > "$f"; shift; done; shift; exec "$@"'


@dataclass(frozen=True, slots=True)
class RunCgroup:
    """The cgroups of one run (either may be missing)."""

    pids: Path | None
    memory: Path | None

    @property
    def paths(self) -> list[Path]:
        return [p for p in (self.pids, self.memory) if p is not None]


class RunCgroups:
    """Creates, joins, reads and removes per-run cgroups."""

    def __init__(self, pids_root: Path | None = None, memory_root: Path | None = None) -> None:
        self.pids_base = pids_root if pids_root is not None else _own_v1_cgroup("pids")
        self.memory_base = memory_root if memory_root is not None else _own_v1_cgroup("memory")
        if self.pids_base is not None and not os.access(self.pids_base, os.W_OK):
            self.pids_base = None
        if self.memory_base is not None and not os.access(self.memory_base, os.W_OK):
            self.memory_base = None
        self._warned: set[str] = set()

    @property
    def pids_available(self) -> bool:
        return self.pids_base is not None

    @property
    def memory_available(self) -> bool:
        return self.memory_base is not None

    def create(self, name: str, max_pids: int | None, memory_bytes: int | None) -> RunCgroup | None:
        """Fresh cgroups `name` with these limits (None: that limit is not asked for), or None
        when none could be made."""
        pids = memory = None
        if max_pids:
            pids = self._make("pids", self.pids_base, name, [("pids.max", str(max_pids))])
        if memory_bytes:
            settings = [("memory.limit_in_bytes", str(memory_bytes))]
            swap = self.memory_base and self.memory_base / "memory.memsw.limit_in_bytes"
            if swap and swap.exists():
                settings.append(("memory.memsw.limit_in_bytes", str(memory_bytes)))
            memory = self._make("memory", self.memory_base, name, settings)
        return RunCgroup(pids, memory) if pids is not None or memory is not None else None

    def _make(
        self, controller: str, base: Path | None, name: str, settings: list[tuple[str, str]]
    ) -> Path | None:
        if base is None:
            if controller not in self._warned:
                log.warning("no writable cgroup %r hierarchy: a run's %s limit is not enforced "
                            "as a whole", controller, controller)  # fmt: skip
                self._warned.add(controller)
            return None
        path = base / name
        try:
            path.mkdir(exist_ok=True)
            for key, value in settings:
                (path / key).write_text(value)
        except OSError as exc:
            log.warning("cannot create cgroup %s (%s): its limit is not enforced", path, exc)
            with contextlib.suppress(OSError):
                path.rmdir()
            return None
        return path

    @staticmethod
    def join_prefix(cgroup: RunCgroup) -> list[str]:
        """A command prefix that moves itself into the run's cgroups then execs the rest: every
        process of the run starts inside them."""
        return ["/bin/sh", "-c", JOIN, "sh", *(str(p / "cgroup.procs") for p in cgroup.paths),
                "--"]  # fmt: skip

    @staticmethod
    def hit_pids_limit(cgroup: RunCgroup) -> bool:
        """Whether a fork was refused by the limit (`pids.events`: max N)."""
        if cgroup.pids is None:
            return False
        try:
            events = (cgroup.pids / "pids.events").read_text().split()
        except OSError:
            return False
        return len(events) >= 2 and events[0] == "max" and events[1] != "0"

    @staticmethod
    def oom_killed(cgroup: RunCgroup) -> bool:
        """Whether the kernel killed a process of the run for its memory limit."""
        if cgroup.memory is None:
            return False
        try:
            lines = (cgroup.memory / "memory.oom_control").read_text().splitlines()
        except OSError:
            return False
        counts = dict(line.split(None, 1) for line in lines if " " in line)
        return counts.get("oom_kill", "0").strip() not in ("", "0")

    @staticmethod
    def remove(cgroup: RunCgroup) -> None:
        for path in cgroup.paths:
            with contextlib.suppress(OSError):
                path.rmdir()


def _own_v1_cgroup(controller: str) -> Path | None:
    root = V1 / controller
    if not root.is_dir():
        return None
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return root / path.lstrip("/")
    return None
