"""A process limit per run, from the cgroup `pids` controller, where this darkroom may use it.

rlimits cannot bound a run's processes (RLIMIT_NPROC counts every process of the user, and not
at all for root), so each run gets its own `pids` cgroup under darkroom's own, joined before
the run's first process execs. This needs a writable cgroup v1 `pids` hierarchy (root, or a
delegated tree); elsewhere the limit is reported as not enforced, once.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

__all__ = ["PidsCgroups"]

log = logging.getLogger(__name__)
V1_ROOT = Path("/sys/fs/cgroup/pids")


class PidsCgroups:
    """Creates, joins, reads and removes per-run `pids` cgroups."""

    def __init__(self, root: Path | None = None) -> None:
        self.base = root if root is not None else _own_v1_pids_cgroup()
        if self.base is not None and not os.access(self.base, os.W_OK):
            self.base = None
        self._warned = False

    @property
    def available(self) -> bool:
        return self.base is not None

    def create(self, name: str, max_pids: int) -> Path | None:
        """A fresh cgroup `name` limited to `max_pids` tasks, or None where there is none."""
        if self.base is None:
            if not self._warned:
                log.warning("no writable cgroup 'pids' hierarchy: run process limits are not "
                            "enforced")  # fmt: skip
                self._warned = True
            return None
        path = self.base / name
        try:
            path.mkdir(exist_ok=True)
            (path / "pids.max").write_text(str(max_pids))
        except OSError as exc:
            log.warning("cannot create cgroup %s (%s): process limit not enforced", path, exc)
            return None
        return path

    @staticmethod
    def join_prefix(path: Path) -> list[str]:
        """A command prefix that moves itself into `path` then execs the rest: every process of
        the run starts inside the cgroup."""
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(path / "cgroup.procs")]

    @staticmethod
    def hit_limit(path: Path) -> bool:
        """Whether a fork was refused by the limit (`pids.events`: max N)."""
        try:
            events = (path / "pids.events").read_text().split()
        except OSError:
            return False
        return len(events) >= 2 and events[0] == "max" and events[1] != "0"

    @staticmethod
    def remove(path: Path) -> None:
        with contextlib.suppress(OSError):
            path.rmdir()


def _own_v1_pids_cgroup() -> Path | None:
    if not V1_ROOT.is_dir():
        return None
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "pids" in controllers.split(","):
            return V1_ROOT / path.lstrip("/")
    return None
