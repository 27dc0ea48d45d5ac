"""The server's side of serving: replica processes started, watched, restarted and retired.

The database says what should serve (`domain.deployments.wanted_deployments`); one thread
reconciles this server's replicas with it every `RECONCILE_S` (sooner when woken by a change):
a replica set per deployment revision, started in the run sandbox under the default run
limits. A replica that dies fails its requests in flight at once (503) and is started again
after a backoff; one that dies `MAX_LOAD_FAILURES` times before it could load the model fails
the deployment with the reason. A new revision's set serves once one of its replicas is ready;
the old set is retired then, after its requests in flight. Replicas are only ever spawned by
that one long-lived thread: bwrap's `--die-with-parent` ties them to the thread that started
them, and a replica also exits when its stdin closes, so a killed server leaves none behind.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from darkroom.background import Loop
from darkroom.db.engine import SessionFactory, session_scope
from darkroom.db.models import Deployment, DeploymentStatus
from darkroom.domain import deployments as deployments_domain
from darkroom.domain.resources import RunResources
from darkroom.errors import DarkroomError
from darkroom.runtime.prepared import cache_root
from darkroom.serving.protocol import CONTROL_ID, read_answer, write_request
from darkroom.storage import BlobStore

__all__ = [
    "Replica",
    "ReplicaLost",
    "Served",
    "SetSpec",
    "Supervisor",
    "Unavailable",
    "set_spec",
    "spawn_replica",
]

log = logging.getLogger(__name__)

RECONCILE_S = 1.0  # seconds between two looks at the database
RESTART_BACKOFF_S = (0.2, 1.0, 2.0, 5.0, 10.0)  # seconds before restarting a dead replica
MAX_LOAD_FAILURES = 3  # replicas in a row that die before loading: the deployment fails
RETIRE_GRACE_S = 10.0  # an old set's requests in flight get this long to finish
STOP_GRACE_S = 3.0  # seconds between closing a replica's stdin and SIGKILL
READY_WAIT_S = 30.0  # a request to a starting deployment waits this long at most
REPLICA_MOUNT = "/run/darkroom/models"
STDERR_TAIL = 20


class ReplicaLost(DarkroomError):
    """The replica answering this request died; the client may retry at once."""

    status_code = 503
    code = "replica_lost"


class Unavailable(DarkroomError):
    status_code = 503
    code = "deployment_unavailable"


@dataclass(frozen=True, slots=True)
class Served:
    """A replica's answer, with the revision that gave it."""

    answer: dict[str, Any]
    revision_id: int
    revision: int
    model_version_id: int


@dataclass(frozen=True, slots=True)
class SetSpec:
    """What a revision's replicas run."""

    deployment_id: int
    revision_id: int
    revision: int
    model_version_id: int
    replicas: int
    config: dict[str, Any]
    weights: Path


def set_spec(deployment: Deployment) -> SetSpec:
    """What the deployment's current revision runs (its weights in this machine's cache)."""
    from darkroom.http.schemas import ModelVersionPublic

    revision = deployment.revision
    model_version = revision.model_version
    config = {
        "model_version": ModelVersionPublic.of(model_version).model_dump(mode="json"),
        "settings": revision.settings,
        "weights": f"{REPLICA_MOUNT}/{model_version.weights_sha256}.onnx",
    }
    weights = cache_root() / "models" / f"{model_version.weights_sha256}.onnx"
    return SetSpec(deployment.id, revision.id, revision.number, model_version.id,
                   int(revision.settings["replicas"]), config, weights)  # fmt: skip


class Replica:
    """One replica process and the requests it holds."""

    def __init__(self, spec: SetSpec, process: subprocess.Popen[bytes]) -> None:
        self.spec, self.process = spec, process
        self.ready = threading.Event()
        self.dead = threading.Event()
        self.load_error: str | None = None
        self.stderr: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
        self._pending: dict[int, Future[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.started_at = time.time()
        threading.Thread(
            target=self._read_answers, daemon=True, name="darkroom-replica-out"
        ).start()
        threading.Thread(target=self._read_stderr, daemon=True, name="darkroom-replica-err").start()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def inflight(self) -> int:
        return len(self._pending)

    def submit(self, payload: bytes) -> Future[dict[str, Any]]:
        future: Future[dict[str, Any]] = Future()
        with self._lock:
            if self.dead.is_set():
                future.set_exception(ReplicaLost("the replica is gone; try again"))
                return future
            request_id = next(self._ids)
            self._pending[request_id] = future
            try:
                assert self.process.stdin is not None
                write_request(self.process.stdin, request_id, payload, len(self._pending))
            except (OSError, ValueError):
                self._pending.pop(request_id, None)
                future.set_exception(ReplicaLost("the replica is gone; try again"))
        return future

    def _read_answers(self) -> None:
        assert self.process.stdout is not None
        try:
            while (frame := read_answer(self.process.stdout)) is not None:
                request_id, answer = frame
                if request_id == CONTROL_ID:
                    if answer.get("ready"):
                        self.ready.set()
                    else:
                        self.load_error = answer.get("error") or "the model does not load"
                    continue
                with self._lock:
                    future = self._pending.pop(request_id, None)
                if future is not None:
                    future.set_result(answer)
        except (OSError, ValueError) as exc:
            log.warning("replica %s: unreadable answer (%s)", self.pid, exc)
        self._died()

    def _died(self) -> None:
        with self._lock:
            self.dead.set()
            pending, self._pending = self._pending, {}
        for future in pending.values():
            future.set_exception(ReplicaLost("the replica serving this request died; try again"))
        self.process.wait()
        self._close_stdin()
        assert self.process.stdout is not None
        self.process.stdout.close()

    def _close_stdin(self) -> None:
        with self._lock:
            if self.process.stdin is not None and not self.process.stdin.closed:
                with contextlib.suppress(OSError):
                    self.process.stdin.close()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self.stderr.append(line)
            log.info("deployment %s replica %s: %s", self.spec.deployment_id, self.pid, line)
        self.process.stderr.close()

    def failure(self) -> str:
        """Why it died, for the deployment's status."""
        if self.load_error:
            return f"the model does not load: {self.load_error}"
        code = self.process.returncode
        what = f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"
        tail = next((line for line in reversed(self.stderr) if line.strip()), "")
        return f"replica ended ({what}) before it was ready" + (f": {tail}" if tail else "")

    def stop(self) -> None:
        """Closes its stdin (it exits after its batch), then kills its process group."""
        self._close_stdin()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(STOP_GRACE_S)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.dead.wait(STOP_GRACE_S)


@dataclass
class ReplicaSet:
    """The replicas of one deployment revision."""

    spec: SetSpec
    replicas: list[Replica | None] = field(default_factory=list)
    restarts: list[int] = field(default_factory=list)
    next_start: list[float] = field(default_factory=list)
    load_failures: int = 0
    failed: str | None = None
    retiring_since: float | None = None
    ever_ready: threading.Event = field(default_factory=threading.Event)

    def live(self) -> list[Replica]:
        return [
            r for r in self.replicas if r is not None and r.ready.is_set() and not r.dead.is_set()
        ]

    def pick(self) -> Replica | None:
        live = self.live()
        return min(live, key=lambda r: r.inflight) if live else None


class Supervisor(Loop):
    """This server's replicas for every deployment that should serve."""

    def __init__(
        self,
        sessions: SessionFactory,
        store: BlobStore,
        *,
        limits: RunResources,
        sandbox_mode: str,
        hidden: list[Path],
        instance: str,
        on_status: Callable[[], None] = lambda: None,
        sandbox_uid: int | None = None,
    ) -> None:
        """`on_status`: called after a deployment's status was changed here. `sandbox_uid`: the
        host uid replicas run as when darkroom runs as root (see `sandbox.host_user`)."""
        super().__init__("darkroom-serving", RECONCILE_S)
        self.sessions, self.store = sessions, store
        self.on_status = on_status
        self.limits, self.sandbox_mode, self.hidden = limits, sandbox_mode, hidden
        self.instance = instance
        self.sandbox_uid = sandbox_uid
        self._sets: dict[int, list[ReplicaSet]] = {}  # deployment id -> sets, newest last
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------

    def step(self) -> None:
        self.reconcile()

    def finish(self) -> None:
        with self._lock:
            sets = [s for group in self._sets.values() for s in group]
            self._sets.clear()
        for replica_set in sets:
            self._stop_set(replica_set)

    # -- requests ------------------------------------------------------------------------------

    async def predict(self, deployment_id: int, name: str, payload: bytes) -> Served:
        """The answer of the least busy ready replica of the deployment's newest ready set;
        waits for a starting deployment at most `READY_WAIT_S`."""
        deadline = time.monotonic() + READY_WAIT_S
        while True:
            replica_set, replica = self._choose(deployment_id)
            if replica is not None:
                break
            if replica_set is not None and replica_set.failed:
                raise Unavailable(f"deployment {name!r} failed: {replica_set.failed}")
            if time.monotonic() > deadline:
                raise Unavailable(f"deployment {name!r} has no replica ready yet; try again")
            self.wake()
            await asyncio.sleep(0.05)
        answer = await asyncio.wrap_future(replica.submit(payload))
        spec = replica.spec
        return Served(answer, spec.revision_id, spec.revision, spec.model_version_id)

    def _choose(self, deployment_id: int) -> tuple[ReplicaSet | None, Replica | None]:
        with self._lock:
            sets = list(self._sets.get(deployment_id, []))
        for replica_set in reversed(sets):
            if replica_set.retiring_since is None and (replica := replica_set.pick()) is not None:
                return replica_set, replica
        for replica_set in reversed(sets):  # a retiring set still answers until it is gone
            if (replica := replica_set.pick()) is not None:
                return replica_set, replica
        return (sets[-1] if sets else None), None

    def replicas_of(self, deployment_id: int) -> list[dict[str, Any]]:
        """This server's replicas of a deployment, for its page and `GET /deployments/{id}`."""
        with self._lock:
            sets = list(self._sets.get(deployment_id, []))
        out = []
        for replica_set in sets:
            for i, replica in enumerate(replica_set.replicas):
                if replica is None:
                    state = "restarting"
                elif replica.dead.is_set():
                    state = "dead"
                else:
                    state = "ready" if replica.ready.is_set() else "starting"
                if replica_set.retiring_since and state == "ready":
                    state = "retiring"
                out.append({
                    "revision": replica_set.spec.revision, "pid": replica.pid if replica else None,
                    "state": state, "restarts": replica_set.restarts[i],
                    "inflight": replica.inflight if replica else 0,
                })  # fmt: skip
        return out

    # -- reconciling -------------------------------------------------------------------------------

    def reconcile(self) -> None:
        with session_scope(self.sessions, write=False) as session:
            found = deployments_domain.wanted_deployments(session)
            wanted = {d.id: set_spec(d) for d in found}
            reported = {d.id: (d.status, d.status_reason) for d in found}
        with self._lock:
            current = dict(self._sets)
        for deployment_id, sets in current.items():
            if deployment_id not in wanted:
                self._retire(deployment_id, sets, everything=True)
        for deployment_id, spec in wanted.items():
            sets = current.get(deployment_id, [])
            if not sets or sets[-1].spec.revision_id != spec.revision_id:
                sets = [*sets, ReplicaSet(spec)]
                with self._lock:
                    self._sets[deployment_id] = sets
            newest = sets[-1]
            if newest.failed is None:
                self._keep_running(newest)
            self._report(newest, reported[deployment_id])
            if newest.ever_ready.is_set() or newest.failed:
                self._retire(deployment_id, sets[:-1])

    def _keep_running(self, replica_set: ReplicaSet) -> None:
        spec = replica_set.spec
        while len(replica_set.replicas) < spec.replicas:
            replica_set.replicas.append(None)
            replica_set.restarts.append(0)
            replica_set.next_start.append(0.0)
        now = time.monotonic()
        for i, replica in enumerate(replica_set.replicas):
            if replica is not None and replica.dead.is_set():
                if replica.ready.is_set():
                    replica_set.load_failures = 0
                    log.warning(
                        "deployment %s: replica %s died (%s); restarting",
                        spec.deployment_id, replica.pid, replica.process.returncode,
                    )  # fmt: skip
                else:
                    replica_set.load_failures += 1
                    if replica_set.load_failures >= MAX_LOAD_FAILURES:
                        replica_set.failed = replica.failure()
                        return
                backoff = RESTART_BACKOFF_S[
                    min(replica_set.restarts[i], len(RESTART_BACKOFF_S) - 1)
                ]
                replica_set.next_start[i] = now + backoff
                replica_set.restarts[i] += 1
                replica_set.replicas[i] = replica = None
            if replica is None and now >= replica_set.next_start[i]:
                try:
                    replica_set.replicas[i] = self._spawn(spec, i)
                except Exception as exc:
                    log.exception("deployment %s: cannot start a replica", spec.deployment_id)
                    replica_set.failed = f"cannot start a replica: {exc}"
                    return
            if replica_set.replicas[i] is not None and replica_set.replicas[i].ready.is_set():
                replica_set.ever_ready.set()

    def _report(self, replica_set: ReplicaSet, reported: tuple[str, str | None]) -> None:
        """Writes the set's state as the deployment's status when the database says another."""
        spec = replica_set.spec
        if replica_set.failed:
            status, reason = DeploymentStatus.failed, replica_set.failed
        elif replica_set.live():
            status, reason = DeploymentStatus.serving, None
        else:
            status, reason = DeploymentStatus.starting, None
        if (status, reason) == reported:
            return
        with session_scope(self.sessions) as session:
            deployments_domain.set_status(session, spec.deployment_id, spec.revision_id, status,
                                          reason)  # fmt: skip
        self.on_status()

    def _retire(self, deployment_id: int, sets: list[ReplicaSet], everything: bool = False) -> None:
        now = time.monotonic()
        for replica_set in sets:
            if replica_set.retiring_since is None:
                replica_set.retiring_since = now
            busy = any(r is not None and r.inflight for r in replica_set.replicas)
            if everything or not busy or now - replica_set.retiring_since > RETIRE_GRACE_S:
                self._stop_set(replica_set)
                with self._lock:
                    group = self._sets.get(deployment_id, [])
                    if replica_set in group:
                        group.remove(replica_set)
                    if not group:
                        self._sets.pop(deployment_id, None)

    @staticmethod
    def _stop_set(replica_set: ReplicaSet) -> None:
        for replica in replica_set.replicas:
            if replica is not None:
                replica.stop()

    # -- processes -------------------------------------------------------------------------------

    def _weights(self, spec: SetSpec) -> Path:
        sha = spec.config["model_version"]["weights_sha256"]
        local = self.store.local_path(sha)
        if local is not None:
            return local
        if not spec.weights.exists():
            spec.weights.parent.mkdir(parents=True, exist_ok=True)
            tmp = spec.weights.with_suffix(f".{os.getpid()}.part")
            with open(tmp, "wb") as fh:
                self.store.copy_to(sha, fh)
            tmp.chmod(0o644)  # a root darkroom's replicas read it as another uid
            tmp.replace(spec.weights)
        return spec.weights

    def _spawn(self, spec: SetSpec, index: int) -> Replica:
        replica = spawn_replica(
            spec, self._weights(spec), limits=self.limits, sandbox_mode=self.sandbox_mode,
            hidden=self.hidden, instance=self.instance,
            threads=max(1, (os.cpu_count() or 1) // spec.replicas), sandbox_uid=self.sandbox_uid,
        )  # fmt: skip
        log.info("deployment %s revision %s: replica %d started (pid %s)", spec.deployment_id,
                 spec.revision, index, replica.pid)  # fmt: skip
        return replica


def spawn_replica(
    spec: SetSpec,
    weights: Path,
    *,
    limits: RunResources,
    sandbox_mode: str,
    hidden: list[Path],
    instance: str,
    threads: int,
    sandbox_uid: int | None = None,
) -> Replica:
    """A replica process of `spec` on this machine, in the run sandbox (bwrap: no network, the
    weights mounted read-only) under `limits`. Call it from a thread that outlives the process:
    bwrap's `--die-with-parent` follows the thread that started it."""
    from darkroom.engine import sandbox
    from darkroom.engine.executors.limits import limit_prefix

    config = {**spec.config, "threads": threads}
    argv = [sys.executable, "-m", "darkroom.serving.replica"]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp",
           "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
           "OMP_NUM_THREADS": str(threads)}  # fmt: skip
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE,
             "start_new_session": True}  # fmt: skip
    if sandbox_mode == "bwrap":
        box = sandbox.SandboxSpec(
            argv=[*argv, json.dumps(config)], env=env, token=None, socket=None,
            ro_paths=sandbox.runtime_paths(exclude=hidden),
            mounts=[(weights, config["weights"])], disk_bytes=limits.disk_bytes,
            hostname=f"darkroom-{instance}-deployment-{spec.deployment_id}",
            user=sandbox.host_user(sandbox_uid),
        )  # fmt: skip
        outside = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        process = sandbox.spawn(box, prefix=limit_prefix(limits), **pipes, env=outside)
    else:
        config["weights"] = str(weights)
        process = subprocess.Popen([*limit_prefix(limits), *argv, json.dumps(config)],
                                   env={**os.environ, **env}, **pipes)  # fmt: skip
    return Replica(spec, process)
