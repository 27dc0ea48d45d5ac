"""The Ray executor: each run a Ray job, submitted through the Ray Jobs API.

A worker with this executor claims runs as any worker does (leases, heartbeats, cancel and
timeout from the database) and submits each as a Ray job whose submission id names the run,
so a resubmission after a worker restart finds the job already there. The job's entrypoint is
`python -m darkroom.engine.node` (an absolute interpreter: Ray's PATH is whoever started it):
on whichever node Ray places it, the node prepares the run with its own cache (weights, bundle
environments) and runs it in the same bubblewrap sandbox as a local run, shipping the run's
output to the server over HTTP in batches (`POST /runs/{id}/output`), so the log is live with
the local executor's latency. Ray's log tail is read only when the node never started.

The manifest's `resources` become the entrypoint's Ray resources (cpus, gpus, memory): a run
asking for more than the cluster has waits in Ray's queue, and its log says what it waits for.
Cancelling stops the Ray job (SIGTERM to the node, which stops the run; Ray's SIGKILL follows).
A job Ray no longer knows (the head restarted: its job history is gone) or a cluster that stays
unreachable makes the run `lost`; a re-run submits a new job.
"""

from __future__ import annotations

import json
import logging
import queue
import shlex
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from darkroom.db.models import utcnow
from darkroom.domain.resources import RunResources
from darkroom.domain.runs import Claimed
from darkroom.engine.executors.base import Failure, OutputLine, check_python_source, drain_lines
from darkroom.sources import Source

__all__ = ["RayExecutor", "RayHandle", "submission_id"]

log = logging.getLogger(__name__)

STATUS_EVERY_S = 0.2  # how often a run's Ray job status is asked (the scheduler ticks at 50 ms)
PENDING_SAY_AFTER_S = 5.0
PENDING_STOP_S = 2.0


def submission_id(instance: str, run_id: int) -> str:
    """The Ray job of a run: one per run, across worker restarts."""
    return f"darkroom-{instance}-run-{run_id}"


@dataclass
class RayHandle:
    run_id: int
    job: str  # its Ray submission id
    resources: dict[str, Any]
    lines: queue.SimpleQueue[OutputLine] = field(default_factory=queue.SimpleQueue)
    status: str = "PENDING"
    lost: bool = False
    lost_why: str = ""
    submitted: float = field(default_factory=time.monotonic)
    next_check: float = 0.0
    unreachable_since: float | None = None
    said_pending: bool = False
    stopping: bool = False
    stop_asked: float = 0.0

    def say(self, text: str, stream: str = "system") -> None:
        self.lines.put(OutputLine(utcnow(), stream, text))

    @property
    def queued(self) -> bool:
        """Waiting in Ray's queue for resources: the scheduler's timeout does not tick."""
        return self.status == "PENDING" and not self.stopping


class RayExecutor:
    name = "ray"

    def __init__(
        self,
        address: str,
        *,
        instance: str = "darkroom",
        python: str = sys.executable,
        defaults: RunResources | None = None,
        sandbox_mode: str = "bwrap",
        unreachable_s: float = 30.0,
        client: Any = None,
        sandbox_uid: int | None = None,
    ) -> None:
        """`address`: the cluster's dashboard (Jobs API), e.g. http://127.0.0.1:8265 or a
        KubeRay head service. `python`: darkroom's interpreter on the nodes (this one's path
        by default: the same install everywhere). `unreachable_s`: how long the cluster may not
        answer before its runs are lost. `sandbox_uid`: the host uid sandboxes run as on nodes
        where darkroom runs as root (see `sandbox.host_user`)."""
        self.address = address
        self.instance = instance
        self.python = python
        self.defaults = defaults or RunResources()
        self.sandbox_mode = sandbox_mode
        self.unreachable_s = unreachable_s
        self.sandbox_uid = sandbox_uid
        self.notify: Callable[[], None] | None = None
        self._client = client

    @property
    def sandboxed(self) -> bool:
        return self.sandbox_mode == "bwrap"

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                from ray.job_submission import JobSubmissionClient
            except ImportError as exc:
                raise RuntimeError(
                    "the Ray executor needs the ray extra: pip install 'darkroom[ray]'"
                ) from exc
            self._client = JobSubmissionClient(self.address)
        return self._client

    def check_available(self) -> None:
        """Raises RuntimeError when the cluster's Jobs API does not answer."""
        try:
            self.client.list_jobs()
        except Exception as exc:
            raise RuntimeError(f"no Ray cluster answers at {self.address}: {exc}") from exc

    def check(self, source: Source) -> None:
        check_python_source(self.name, source)  # its nodes run what a local executor runs

    # -- start ---------------------------------------------------------------------------------

    def start(self, claimed: Claimed, server_url: str) -> RayHandle:
        from darkroom.domain.resources import parse_resources

        resources = claimed.resources or {}
        parse_resources(resources)  # validated at push; a bad one fails the run here
        handle = RayHandle(claimed.run_id, submission_id(self.instance, claimed.run_id), resources)
        env = {
            "DARKROOM_URL": server_url,
            "DARKROOM_RUN_TOKEN": claimed.token,
            "DARKROOM_CLAIMED": json.dumps({**asdict(claimed), "token": ""}),
            "DARKROOM_RUN_DEFAULTS": json.dumps(asdict(self.defaults)),
            "DARKROOM_SANDBOX": self.sandbox_mode,
            "PYTHONUNBUFFERED": "1",
        }
        if self.sandbox_uid is not None:
            env["DARKROOM_SANDBOX_UID"] = str(self.sandbox_uid)
        options: dict[str, Any] = {"entrypoint_num_cpus": float(resources.get("cpus") or 1)}
        if resources.get("gpus"):
            options["entrypoint_num_gpus"] = float(resources["gpus"])
        memory = self.defaults.merged(resources).memory_bytes
        if "memory" in resources and memory:
            options["entrypoint_memory"] = int(memory)
        try:
            self.client.submit_job(
                entrypoint=f"{shlex.quote(self.python)} -m darkroom.engine.node",
                submission_id=handle.job,
                runtime_env={"env_vars": env},
                metadata={"darkroom_run": str(claimed.run_id)},
                **options,
            )
        except RuntimeError as exc:
            if "already exists" not in str(exc):
                raise
            handle.say(f"Ray job {handle.job} exists already: following it")
        else:
            asked = ", ".join(f"{k.removeprefix('entrypoint_')}={v}" for k, v in options.items())
            handle.say(f"submitted to Ray at {self.address} as job {handle.job} ({asked})")
        return handle

    # -- watch ---------------------------------------------------------------------------------

    def poll(self, handle: RayHandle) -> int | None:
        now = time.monotonic()
        if now < handle.next_check:
            return None
        handle.next_check = now + STATUS_EVERY_S
        try:
            status = str(self.client.get_job_status(handle.job)).rsplit(".", 1)[-1]
        except Exception as exc:
            return self._unanswered(handle, exc, now)
        handle.unreachable_since = None
        if status != handle.status:
            handle.status = status
            if status == "RUNNING":
                handle.say(f"Ray job {handle.job} running")
        if status == "PENDING":
            if handle.stopping and now - handle.stop_asked > PENDING_STOP_S:
                # a job waiting for resources Ray never gave it stays PENDING when stopped
                handle.say(f"Ray job {handle.job} stopped before it started")
                return -signal.SIGTERM
            if not handle.said_pending and now - handle.submitted > PENDING_SAY_AFTER_S:
                handle.said_pending = True
                handle.say(f"queued on Ray: waiting for resources ({self._asked(handle)}); "
                           "it starts when the cluster has them")  # fmt: skip
            return None
        if status == "RUNNING":
            return None
        return self._ended(handle, status)

    @staticmethod
    def _asked(handle: RayHandle) -> str:
        cpus = handle.resources.get("cpus") or 1
        extra = [
            f"{k}={handle.resources[k]}" for k in ("gpus", "memory") if handle.resources.get(k)
        ]
        return ", ".join([f"cpus={cpus}", *extra])

    def _ended(self, handle: RayHandle, status: str) -> int:
        info = self.client.get_job_info(handle.job)
        code = getattr(info, "driver_exit_code", None)
        if status == "SUCCEEDED":
            return 0
        if status == "STOPPED":
            return -signal.SIGTERM
        if code is None:  # the node never ran: an environment or placement failure
            handle.say(f"Ray job {handle.job} failed before darkroom started on its node", "stderr")
            for line in self._tail(handle, info):
                handle.say(line, "stderr")
            return 1
        return -(code - 128) if code > 128 and (code - 128) in signal.valid_signals() else code

    def _tail(self, handle: RayHandle, info: Any) -> list[str]:
        """Ray's own log of the job (the fallback: the node shipped nothing), last lines."""
        try:
            text = self.client.get_job_logs(handle.job)
        except Exception:
            text = getattr(info, "message", "") or ""
        return [line for line in text.splitlines() if line.strip()][-20:]

    def _unanswered(self, handle: RayHandle, exc: Exception, now: float) -> int | None:
        if "does not exist" in str(exc):
            return self._lose(handle, f"Ray no longer knows job {handle.job} (was the head "
                                      "restarted? its job history is gone)")  # fmt: skip
        if handle.unreachable_since is None:
            handle.unreachable_since = now
            handle.say(f"Ray cluster at {self.address} does not answer ({exc}); retrying")
        if now - handle.unreachable_since >= self.unreachable_s:
            return self._lose(handle, f"the Ray cluster at {self.address} did not answer for "
                                      f"{self.unreachable_s:.0f} s")  # fmt: skip
        return None

    @staticmethod
    def _lose(handle: RayHandle, why: str) -> int:
        handle.lost, handle.lost_why = True, f"lost: {why}"
        handle.say(handle.lost_why, "stderr")
        return 1

    def drain(self, handle: RayHandle) -> list[OutputLine]:
        return drain_lines(handle.lines)

    def failure_reason(self, handle: RayHandle, code: int, last_stderr: str) -> Failure | None:
        return Failure(handle.lost_why) if handle.lost_why else None

    # -- stop ----------------------------------------------------------------------------------

    def cancel(self, handle: RayHandle, grace_s: float) -> None:
        """Ray sends the node SIGTERM (it stops the run), then SIGKILL a few seconds later."""
        if handle.stopping:
            return
        handle.stopping, handle.stop_asked = True, time.monotonic()
        try:
            self.client.stop_job(handle.job)
        except Exception as exc:
            handle.say(f"could not stop Ray job {handle.job}: {exc}")

    def kill(self, handle: RayHandle) -> None:
        self.cancel(handle, 0)

    def leftover_runs(self) -> dict[int, list[int]]:
        return {}  # nothing of a Ray run lives on the worker's machine

    def gpus(self) -> None:
        return None  # Ray places runs that ask for GPUs on nodes that have them

    def kill_processes(self, pids: list[int]) -> None:
        return None

    def close(self) -> None:
        return None
