"""The local executor: each run a process tree on this machine, sandboxed by default.

`start` hands the run to a preparation thread (model weights, bundle and its environment, into
the cache; pip's output goes to the run's log); the next `poll` from the scheduler's thread then
starts `python -m darkroom.runtime` — inside a bubblewrap sandbox (`darkroom.engine.sandbox`)
unless `DARKROOM_SANDBOX=none` — under the run's limits. Two reader threads turn its stdout and
stderr into timestamped lines the scheduler drains into the log.

A sandboxed executor keeps one *standby*: a sandbox started ahead of any run, its runtime's
imports done, waiting on its stdin. A run of a built-in or inline processing under the default
limits takes it and starts in a few milliseconds instead of about 0.4 s; the sandbox is the same
(its run-specific pieces — weights, input links — are hard links made in the standby's own
folders, and its token comes through the pipe). Each standby serves one run only. The next one
is started when a run ends, so its imports never compete with a running run for the CPU.

Cancelling sends SIGTERM to every process of the run, then SIGKILL after the grace period; the
sandbox's PID namespace ends with its main process, so daemons a run started go too. Processes
are tied to the scheduler's thread (parent-death signal), and `leftover_runs` finds any that
outlived a killed worker so the scheduler can end them.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from darkroom.client import Client
from darkroom.db.models import utcnow
from darkroom.domain.resources import RunResources, asked_gpus
from darkroom.domain.runs import Claimed
from darkroom.engine import sandbox
from darkroom.engine.cgroups import RunCgroup, RunCgroups
from darkroom.engine.executors.base import (
    Failure,
    OutputLine,
    check_python_source,
    drain_lines,
    read_lines,
)
from darkroom.engine.executors.limits import limit_failure, limit_prefix
from darkroom.engine.executors.standby import (
    STANDBY_SOURCES,
    Standby,
    discard,
    hand_over,
    remove_standby_files,
)
from darkroom.engine.gpus import GpuPool, device_files, worker_gpus
from darkroom.engine.preparation import InputLinker, Prepared, prepare_run
from darkroom.engine.processes import (
    INSTANCE_ENV,
    command_name,
    descendants,
    run_name,
    run_processes,
    signal_group,
    signal_pid,
    standby_name,
)
from darkroom.engine.relay import SocketRelay
from darkroom.engine.run_environment import (
    RUN_BLOBS,
    RUN_CACHE,
    RUN_DIR,
    gpu_environment,
    run_environment,
    sandbox_environment,
)
from darkroom.runtime.prepared import BLOBS_ENV, BUNDLE_DIR_ENV, cache_root
from darkroom.sources import BuiltinSource, Source

__all__ = ["LocalExecutor", "LocalHandle"]

log = logging.getLogger(__name__)


@dataclass
class LocalHandle:
    run_id: int
    limits: RunResources
    lines: queue.SimpleQueue[OutputLine] = field(default_factory=queue.SimpleQueue)
    process: subprocess.Popen[bytes] | None = None
    preparing: threading.Thread | None = None
    prepared: Prepared | None = None
    prep_error: BaseException | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    readers: list[threading.Thread] = field(default_factory=list)
    kill_at: float | None = None  # monotonic time to SIGKILL after a SIGTERM
    workdir: Path | None = None  # its own host folder (unsandboxed: its cwd), removed at the end
    links: Path | None = None  # hard links to its input images, removed at the end
    linker: InputLinker | None = None  # makes them while the run starts; stopped at the end
    cgroup: RunCgroup | None = None  # its process and memory cgroups, removed at the end
    hit: str | None = None  # the limit it ran into as a whole: "processes" or "memory"
    token: str = ""
    server_url: str = ""
    standby: Standby | None = None  # the sandbox started ahead that this run takes
    builtin: str | None = None  # its built-in processing's module, which the next standby loads
    gpus: list[int] = field(default_factory=list)  # the GPUs lent to it, given back at its end
    lost: bool = False  # a local run's process is always known
    queued: bool = False  # started at once: no queue of its own

    def say(self, text: str, stream: str = "system") -> None:
        self.lines.put(OutputLine(utcnow(), stream, text))


class LocalExecutor:
    name = "local"

    def __init__(
        self,
        *,
        sandbox_mode: str = "bwrap",
        defaults: RunResources | None = None,
        hidden: Iterable[Path] = (),
        instance: str = "darkroom",
        python: str = sys.executable,
        store_root: Path | None = None,
        standby: bool = True,
        sandbox_uid: int | None = None,
        gpus: list[int] | None = None,
    ) -> None:
        """`hidden`: folders a sandboxed run must not see even if darkroom's interpreter lives
        there (darkroom's home, the blob store). `defaults`: limits of runs that ask for none.
        `instance` names the darkroom (its database) the runs belong to: run ids of two
        darkrooms on one machine collide, and neither may end the other's runs. `store_root`:
        the blob store's folder when it is local; runs then read their input images from it
        (hard links to their input version's files only) instead of through the API.
        `standby`: keep a sandbox started ahead for the next run (sandboxed mode only).
        `sandbox_uid`: the host uid sandboxes run as when darkroom runs as root (None: root's
        first subordinate id, else nobody; see `sandbox.host_user`). `gpus`: the indices of
        the GPUs lent to runs asking for some (None: this machine's, see `engine.gpus`)."""
        if sandbox_mode not in sandbox.SANDBOX_MODES:
            raise ValueError(f"DARKROOM_SANDBOX must be one of {sandbox.SANDBOX_MODES}")
        self.sandbox_mode = sandbox_mode
        self.user = sandbox.host_user(sandbox_uid) if sandbox_mode == "bwrap" else None
        self.defaults = defaults or RunResources()
        self.python = python
        self.instance = instance
        self.cache = cache_root()
        self._hidden = [*hidden, self.cache]
        self._runtime_paths: list[Path] | None = None
        self._relays: dict[str, SocketRelay] = {}
        self._server_sockets: dict[str, Path] = {}
        self._run_dir: Path | None = None
        self.cgroups = RunCgroups()
        self.store_root = store_root
        self.use_standby = standby and self.sandboxed
        self.notify: Callable[[], None] | None = None
        self._standby: Standby | None = None
        self.gpu_pool = GpuPool(worker_gpus(None) if gpus is None else gpus)

    @property
    def sandboxed(self) -> bool:
        return self.sandbox_mode == "bwrap"

    def check_available(self) -> None:
        """Raises SandboxUnavailable when runs cannot be sandboxed as configured."""
        if self.sandboxed:
            sandbox.check_bwrap()
            paths = self._sandbox_paths()
            needed = [Path(sys.base_prefix).resolve(), Path(sandbox.__file__).resolve().parents[2]]
            missing = [p for p in needed if not any(p == r or r in p.parents
                                                    for r in paths)]  # fmt: skip
            if missing:
                raise sandbox.SandboxUnavailable(
                    f"darkroom's Python ({', '.join(map(str, missing))}) lies inside a folder runs "
                    f"must not see ({', '.join(map(str, self._hidden))}): move DARKROOM_HOME or "
                    "DARKROOM_CACHE out of it"
                )

    def check(self, source: Source) -> None:
        check_python_source(self.name, source)

    def gpus(self) -> tuple[int, int]:
        return self.gpu_pool.total, self.gpu_pool.free()

    # -- start ---------------------------------------------------------------------------------

    def start(self, claimed: Claimed, server_url: str) -> LocalHandle:
        handle = LocalHandle(claimed.run_id, self.defaults.merged(claimed.resources))
        handle.token, handle.server_url = claimed.token, server_url
        if isinstance(claimed.source, BuiltinSource):
            handle.builtin = claimed.source.module
        asked = asked_gpus(claimed.resources)
        gpus = self.gpu_pool.take(asked)
        if gpus is None:  # claimed only with enough free: another scheduler shares this pool?
            raise RuntimeError(f"it asks for {asked} GPU(s) and {self.gpu_pool.free()} of this "
                               f"worker's {self.gpu_pool.total} are free")  # fmt: skip
        handle.gpus = gpus
        standby = self._standby
        if standby is not None and standby.process.poll() is not None:  # it died waiting
            discard(standby)
            self._standby = standby = None
        fits = (isinstance(claimed.source, STANDBY_SOURCES) and handle.limits == self.defaults
                and not gpus)  # fmt: skip
        if standby is not None and fits:
            handle.standby, self._standby = standby, None
        handle.preparing = threading.Thread(
            target=self._prepare, args=(handle,), name=f"run-{claimed.run_id}-prepare", daemon=True
        )
        handle.preparing.start()
        return handle

    def _prepare(self, handle: LocalHandle) -> None:
        try:
            wrap = self._confine_build if self.sandboxed else None
            if handle.standby is not None:
                handle.links = handle.standby.links
            elif self.store_root is not None and self.store_root.is_dir():
                name = f"run-{run_name(self.instance, handle.run_id)}"
                handle.links = self.store_root / ".tmp" / name
            with Client(handle.server_url, handle.token) as client:
                prepared = prepare_run(
                    client, handle.run_id, handle.say, handle.cancelled, self.cache, wrap,
                    handle.links,
                )  # fmt: skip
            if prepared.blobs is not None and prepared.input_version_id is not None:
                assert self.store_root is not None
                handle.linker = InputLinker(
                    handle.server_url, handle.token, prepared.input_version_id,
                    self.store_root, prepared.blobs,
                ).start()  # fmt: skip
            handle.prepared = prepared
        except BaseException as exc:  # reported by poll, from the scheduler's thread
            handle.prep_error = exc
        finally:
            if self.notify is not None:
                self.notify()  # the scheduler's thread starts the process: at once

    def _sandbox_paths(self) -> list[Path]:
        """darkroom's own Python, mounted read-only into sandboxes; found once."""
        if self._runtime_paths is None:
            self._runtime_paths = sandbox.runtime_paths(self._hidden)
        return self._runtime_paths

    def _confine_build(self, cmd: list[str], writable: Path) -> list[str]:
        return sandbox.build_command(cmd, writable, self._sandbox_paths(), self.user)

    def _spawn(self, handle: LocalHandle) -> None:
        """Starts the run's process. Called from the scheduler's thread: the parent-death
        signal is tied to the thread that forks, and that thread lives as long as the worker."""
        process = self._take_standby(handle) if handle.standby is not None else None
        if process is None:
            name = run_name(self.instance, handle.run_id)
            handle.cgroup = self.cgroups.create(name, handle.limits.processes,
                                                handle.limits.memory_bytes)  # fmt: skip
            if self.sandboxed:
                process = self._spawn_sandboxed(handle)
            else:
                process = self._spawn_unsandboxed(handle)
        handle.process = process
        for name, pipe in (("stdout", process.stdout), ("stderr", process.stderr)):
            ended = functools.partial(_ended, process, self.notify) if name == "stderr" else None
            reader = threading.Thread(
                target=read_lines, args=(pipe, name, handle.lines, ended), daemon=True,
                name=f"run-{handle.run_id}-{name}",
            )  # fmt: skip
            reader.start()
            handle.readers.append(reader)

    def _spawn_sandboxed(self, handle: LocalHandle) -> subprocess.Popen[bytes]:
        prepared = handle.prepared
        assert prepared is not None
        limits = handle.limits
        # What was prepared is mounted at fixed places: no host path of the cache shows inside.
        mounts: list[tuple[Path, str]] = []
        python = self.python
        extra: dict[str, str] = {
            "DARKROOM_RUN_TOKEN_FILE": sandbox.TOKEN_PATH,
            "DARKROOM_RUN_ID": str(handle.run_id),
            **gpu_environment(handle.gpus),
        }
        if prepared.weights is not None:
            mounts.append((prepared.weights, f"{RUN_CACHE}/models/{prepared.weights.name}"))
        if prepared.blobs is not None:
            mounts.append((prepared.blobs, RUN_BLOBS))
            extra[BLOBS_ENV] = RUN_BLOBS
        if prepared.bundle is not None and prepared.environment is not None:
            mounts += [
                (prepared.bundle, f"{RUN_DIR}/bundle"),
                (prepared.environment, f"{RUN_DIR}/env"),
            ]
            python = f"{RUN_DIR}/env/bin/python"
            extra[BUNDLE_DIR_ENV] = f"{RUN_DIR}/bundle"
        spec = sandbox.SandboxSpec(
            argv=[python, "-m", "darkroom.runtime"],
            env={**sandbox_environment(os.environ), **extra},
            token=handle.token,
            socket=self._relay(handle.server_url),
            ro_paths=self._sandbox_paths(),
            mounts=mounts,
            network=limits.network,
            disk_bytes=limits.disk_bytes,
            hostname=run_name(self.instance, handle.run_id),
            user=self.user,
            devices=device_files(handle.gpus),
        )
        return self._start_sandbox(spec, self._prefix(handle), stdin=subprocess.DEVNULL)

    @staticmethod
    def _start_sandbox(
        spec: sandbox.SandboxSpec, prefix: list[str], stdin: int
    ) -> subprocess.Popen[bytes]:
        return sandbox.spawn(
            spec,
            prefix=prefix,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # bwrap's own processes (one is PID 1 inside, readable there) keep nothing of ours
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
            start_new_session=True,
        )

    # -- standby -------------------------------------------------------------------------------

    def _spawn_standby(self, server_url: str, builtin: str | None = None) -> None:
        """Starts the next standby (from the scheduler's thread, as every sandbox); it imports
        the `builtin` processing's module ahead too (darkroom's own code, never a user's)."""
        key = uuid.uuid4().hex[:12]
        folder = self.cache / "standby" / f"{self.instance}-{key}"
        links = None
        if self.store_root is not None and self.store_root.is_dir():
            links = self.store_root / ".tmp" / f"standby-{self.instance}-{key}"
        cgroup = None
        try:
            (folder / "models").mkdir(parents=True)
            mounts = [(folder / "models", f"{RUN_CACHE}/models")]
            if links is not None:
                links.mkdir(parents=True)
                mounts.append((links, RUN_BLOBS))
            limits = self.defaults
            cgroup = self.cgroups.create(f"{self.instance}-standby-{key}", limits.processes,
                                         limits.memory_bytes)  # fmt: skip
            spec = sandbox.SandboxSpec(
                argv=[self.python, "-m", "darkroom.runtime", "--standby"]
                + (["--load", builtin] if builtin else []),
                env=sandbox_environment(os.environ),
                token=None,
                socket=self._relay(server_url),
                ro_paths=self._sandbox_paths(),
                mounts=mounts,
                network=self.defaults.network,
                disk_bytes=self.defaults.disk_bytes,
                hostname=standby_name(self.instance),
                user=self.user,
            )
            join = RunCgroups.join_prefix(cgroup) if cgroup is not None else []
            prefix = [*join, *limit_prefix(self.defaults)]
            process = self._start_sandbox(spec, prefix, stdin=subprocess.PIPE)
        except Exception:
            log.exception("could not start a standby sandbox; runs start cold")
            remove_standby_files(folder, links, cgroup)
            return
        self._standby = Standby(process, folder, links, cgroup)

    def _take_standby(self, handle: LocalHandle) -> subprocess.Popen[bytes] | None:
        """Hands the run to its standby: None (and the standby discarded) when it cannot."""
        standby, prepared = handle.standby, handle.prepared
        assert standby is not None
        assert prepared is not None
        handle.standby = None
        if not hand_over(standby, handle.run_id, handle.token, prepared):
            discard(standby, keep_links=True)
            return None
        handle.cgroup, handle.workdir = standby.cgroup, standby.folder
        handle.say("started in a standby sandbox")
        return standby.process

    def _spawn_unsandboxed(self, handle: LocalHandle) -> subprocess.Popen[bytes]:
        prepared = handle.prepared
        assert prepared is not None
        python, extra = self.python, {}
        if prepared.bundle is not None and prepared.environment is not None:
            python = str(prepared.environment / "bin" / "python")
            extra[BUNDLE_DIR_ENV] = str(prepared.bundle)
        if prepared.blobs is not None:
            extra[BLOBS_ENV] = str(prepared.blobs)
        handle.workdir = Path(tempfile.mkdtemp(prefix=f"darkroom-run-{handle.run_id}-"))
        token_file = handle.workdir / ".darkroom-run-token"
        token_file.touch(mode=0o600)
        token_file.write_text(handle.token)
        env = {
            **run_environment(os.environ),
            "DARKROOM_URL": handle.server_url,
            "DARKROOM_RUN_TOKEN_FILE": str(token_file),
            "DARKROOM_RUN_ID": str(handle.run_id),
            "DARKROOM_CACHE": str(self.cache),
            INSTANCE_ENV: self.instance,
            "PYTHONUNBUFFERED": "1",
            **gpu_environment(handle.gpus),
            **extra,
        }
        setpriv = shutil.which("setpriv")
        die = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
        return subprocess.Popen(
            [*self._prefix(handle), *die, python, "-m", "darkroom.runtime"],
            cwd=handle.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # its own process group, for cancel and timeout
        )

    def _prefix(self, handle: LocalHandle) -> list[str]:
        """Joins the run's cgroup, then sets its rlimits, then execs what follows."""
        join = RunCgroups.join_prefix(handle.cgroup) if handle.cgroup is not None else []
        return [*join, *limit_prefix(handle.limits)]

    def serve_runs_at(self, server_url: str, socket_path: Path) -> None:
        """The server at `server_url` also listens on this Unix socket (`darkroom serve` with
        its scheduler): sandboxes get it directly, without a relay copying every byte."""
        self._server_sockets[server_url] = socket_path

    def _relay(self, server_url: str) -> Path:
        if server_url in self._server_sockets:
            return self._server_sockets[server_url]
        relay = self._relays.get(server_url)
        if relay is None:
            if self._run_dir is None:
                self._run_dir = Path(tempfile.mkdtemp(prefix="darkroom-executor-"))
            relay = SocketRelay(self._run_dir / f"server-{len(self._relays)}.sock", server_url)
            relay.start()
            self._relays[server_url] = relay
        return relay.path

    # -- watch ---------------------------------------------------------------------------------

    def poll(self, handle: LocalHandle) -> int | None:
        if handle.process is None:
            if handle.preparing is not None and handle.preparing.is_alive():
                return None
            if handle.cancelled.is_set():
                self._release(handle)
                return -signal.SIGTERM
            if handle.prep_error is not None:
                error = handle.prep_error
                handle.say(f"{type(error).__name__}: {error}", "stderr")
                self._release(handle)
                return 2
            try:
                self._spawn(handle)
            except Exception as exc:
                log.exception("could not start run %s", handle.run_id)
                handle.say(f"could not start the run: {exc}", "stderr")
                if handle.cgroup is not None:
                    RunCgroups.remove(handle.cgroup)
                self._release(handle)
                return 2
            return None
        code = handle.process.poll()
        if code is None:
            if handle.kill_at is not None and time.monotonic() >= handle.kill_at:
                self.kill(handle)
            elif handle.hit is None and handle.cgroup and RunCgroups.oom_killed(handle.cgroup):
                handle.hit = "memory"  # no group OOM kill in cgroup v1: the whole run ends
                handle.say("the run went over its memory limit: stopping all of it")
                self.kill(handle)
            return None
        for reader in handle.readers:
            reader.join(timeout=5)
        self._release(handle)
        if handle.cgroup is not None:
            if RunCgroups.oom_killed(handle.cgroup):
                handle.hit = "memory"
                code = code or -signal.SIGKILL  # a child was killed for it: the run failed
            elif RunCgroups.hit_pids_limit(handle.cgroup):
                handle.hit = "processes"
            RunCgroups.remove(handle.cgroup)
        if self.use_standby and self._standby is None and not handle.cancelled.is_set():
            # not while cancelling (maybe shutting down); ready for another run of the same kind
            self._spawn_standby(handle.server_url, handle.builtin)
        if self.sandboxed and code > 128 and (code - 128) in signal.valid_signals():
            code = -(code - 128)  # bwrap reports a signal death as 128 + signal
        return code

    def _release(self, handle: LocalHandle) -> None:
        """Removes the run's working folder and input links (the blobs stay in the store)."""
        if handle.standby is not None:  # never used: it may have seen this run's links
            discard(handle.standby)
            handle.standby = None
        if handle.linker is not None:
            handle.linker.stop()
        self._give_back_gpus(handle)
        for folder in (handle.workdir, handle.links):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)

    def drain(self, handle: LocalHandle) -> list[OutputLine]:
        return drain_lines(handle.lines)

    def failure_reason(self, handle: LocalHandle, code: int, last_stderr: str) -> Failure | None:
        """The limit a failed run ran into, if one did."""
        return limit_failure(handle.limits, code, last_stderr, handle.hit)

    # -- stop ----------------------------------------------------------------------------------

    def cancel(self, handle: LocalHandle, grace_s: float) -> None:
        if handle.kill_at is not None:
            return
        handle.cancelled.set()  # stops a preparation (an environment build) at once
        handle.kill_at = time.monotonic() + grace_s
        if handle.process is None:
            return
        if self.sandboxed:  # not bwrap itself: it would take the sandbox down at once
            for pid in descendants(handle.process.pid):
                if command_name(pid) != "bwrap":
                    signal_pid(pid, signal.SIGTERM)
        else:
            signal_group(handle.process.pid, signal.SIGTERM)

    def kill(self, handle: LocalHandle) -> None:
        handle.cancelled.set()
        if handle.process is not None:
            signal_group(handle.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                handle.process.wait(2)  # a GPU is lent again once its process is gone
        if handle.process is None or handle.process.poll() is not None:
            self._give_back_gpus(handle)  # a run dropped here is never polled again

    def _give_back_gpus(self, handle: LocalHandle) -> None:
        gpus, handle.gpus = handle.gpus, []
        self.gpu_pool.give_back(gpus)

    def leftover_runs(self) -> dict[int, list[int]]:
        return run_processes(self.instance)

    def kill_processes(self, pids: Iterable[int]) -> None:
        for pid in pids:
            for child in [pid, *descendants(pid)]:
                signal_pid(child, signal.SIGKILL)

    def close(self) -> None:
        if self._standby is not None:
            discard(self._standby)
            self._standby = None
        for relay in self._relays.values():
            relay.close()
        if self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)


def _ended(process: subprocess.Popen[bytes], notify: Callable[[], None] | None) -> None:
    """After the run's output closed: waits briefly for its exit, then says so."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(1)
    if notify is not None:
        notify()
