"""Run processes in this machine's process table: which run a process belongs to, and what
runs below a process. The executor signals them; the scheduler ends leftovers of runs that are
no longer running (a worker killed with -9, a server restarted).
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

__all__ = [
    "INSTANCE_ENV",
    "STANDBY_RUN_FILE",
    "command_name",
    "descendants",
    "run_name",
    "run_processes",
    "signal_group",
    "signal_pid",
    "standby_name",
]

# Names the darkroom (its database) an unsandboxed runtime belongs to: run ids of two darkrooms
# on one machine collide, and neither may end the other's runs.
INSTANCE_ENV = "DARKROOM_INSTANCE"
# In a standby sandbox's own folder (the host side of its models mount): the id of the run it
# took, written before the run starts.
STANDBY_RUN_FILE = "run"


def run_processes(instance: str | None = None) -> dict[int, list[int]]:
    """Run processes on this machine, by run id: sandboxes by their host name, unsandboxed
    runtimes by their environment; of one darkroom `instance`, or of all."""
    found: dict[int, list[int]] = {}
    for pid in _pids():
        run_id = _run_of(pid, instance)
        if run_id is not None:
            found.setdefault(run_id, []).append(pid)
    return found


def _standby_run(argv: list[bytes]) -> str:
    """The run a standby sandbox took ("" if none yet), from the folder its models mount
    comes from."""
    for i, arg in enumerate(argv[:-1]):
        if arg == b"--ro-bind" and argv[i + 1].endswith(b"/models"):
            marker = Path(os.fsdecode(argv[i + 1])).parent / STANDBY_RUN_FILE
            try:
                return marker.read_text().strip()
            except OSError:
                return ""
    return ""


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(root: int) -> list[int]:
    """Every process below `root`, from the process table (daemons reparented inside a
    sandbox stay below it: its PID namespace's init is a descendant)."""
    children: dict[int, list[int]] = {}
    for pid in _pids():
        parent = _parent_of(pid)
        if parent is not None:
            children.setdefault(parent, []).append(pid)
    out, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def run_name(instance: str, run_id: int) -> str:
    """A run's name on this machine: its sandbox's host name and its cgroup's name."""
    return f"darkroom-{instance}-run-{run_id}"


def standby_name(instance: str) -> str:
    """The host name of a sandbox started before its run: the run is in its folder's
    `STANDBY_RUN_FILE` once it took one."""
    return f"darkroom-{instance}-standby"


def _run_of(pid: int, instance: str | None) -> int | None:
    """The run a process belongs to: a sandbox's outer bwrap by its `--hostname` (or, for a
    standby, by the run file in the folder it mounts), or an unsandboxed runtime by its
    environment."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    names = [os.path.basename(a) for a in argv[:8]]
    if b"bwrap" in names and b"--hostname" in argv:
        name = argv[argv.index(b"--hostname") + 1].decode(errors="replace")
        prefix, _, run_id = name.rpartition("-run-")
        if name.endswith("-standby"):
            prefix, run_id = name.removesuffix("-standby"), _standby_run(argv)
        ours = prefix.startswith("darkroom-") and instance in (None, prefix[len("darkroom-") :])
        return int(run_id) if ours and run_id.isdigit() else None
    if b"darkroom.runtime" in argv and b"-m" in argv:
        try:
            environ = dict(
                item.split(b"=", 1)
                for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                if b"=" in item
            )
        except OSError:
            return None
        value = environ.get(b"DARKROOM_RUN_ID", b"")
        if instance is not None and environ.get(INSTANCE_ENV.encode()) != instance.encode():
            return None
        return int(value) if value.isdigit() else None
    return None


def signal_pid(pid: int, sig: signal.Signals) -> None:
    """Signals a process that may be gone already, or no longer ours to signal."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signals the process group `pid` leads (a run started in its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
