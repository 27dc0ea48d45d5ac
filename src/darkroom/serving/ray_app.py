"""Replicas as a Ray Serve application: what a server whose executor is Ray serves with.

Each Serve replica is a thin actor around the same replica process a local server starts
(`darkroom.serving.replica` in the run sandbox, talking over its pipes, batching there): the
actor fetches the revision's weights from the darkroom server into the node's cache with the
deployment's replica token, starts the process from a thread that lives as long as it (bwrap's
`--die-with-parent` follows that thread), and forwards each request's image. Serve places,
health-checks, restarts and rolls out replicas; darkroom's server only declares the application
(`serving.ray_serving`) and reads its status. Imported on the nodes only: it needs Ray Serve.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from ray import serve
from ray.serve import Application
from starlette.requests import Request
from starlette.responses import JSONResponse

from darkroom.domain.resources import RunResources
from darkroom.runtime.prepared import cache_root
from darkroom.serving.supervisor import Replica, ReplicaLost, SetSpec, spawn_replica

__all__ = ["DarkroomReplica", "app"]

DEPLOYMENT = "replica"  # the Serve deployment's name inside each application
LOAD_WAIT_S = 120.0  # a replica whose model is not loaded by then fails


def fetch_weights(server_url: str, token: str, deployment_id: int, revision: int, sha: str) -> Path:
    """The revision's ONNX file in this node's cache, downloaded once per node."""
    target = cache_root() / "models" / f"{sha}.onnx"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_suffix(f".{os.getpid()}.part")
    path = f"/api/v1/deployments/{deployment_id}/revisions/{revision}/weights"
    url = server_url.rstrip("/") + path
    with httpx.stream("GET", url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as got:
        if got.status_code != 200:
            got.read()
            raise RuntimeError(f"the server refused the weights ({got.status_code}): {got.text}")
        with open(part, "wb") as fh:
            for chunk in got.iter_bytes(1 << 20):
                fh.write(chunk)
    part.replace(target)
    return target


@serve.deployment(name=DEPLOYMENT, health_check_period_s=2, health_check_timeout_s=10)
class DarkroomReplica:
    """One Serve replica: a sandboxed replica process and the requests it holds."""

    def __init__(self, args: dict[str, Any]) -> None:
        given = args["spec"]
        sha = given["config"]["model_version"]["weights_sha256"]
        weights = fetch_weights(args["server_url"], args["token"], given["deployment_id"],
                                given["revision"], sha)  # fmt: skip
        spec = SetSpec(**{**given, "weights": weights})
        limits = RunResources(**args["limits"])
        started: dict[str, Any] = {}
        spawned = threading.Event()

        def keep() -> None:  # the replica's parent thread: it waits as long as the process
            try:
                started["replica"] = spawn_replica(
                    spec, weights, limits=limits, sandbox_mode=args["sandbox_mode"], hidden=[],
                    instance=args["instance"], threads=int(args.get("threads") or 1),
                )  # fmt: skip
            except Exception as exc:  # reported by the constructor below
                started["error"] = exc
            spawned.set()
            if "replica" in started:
                started["replica"].process.wait()

        threading.Thread(target=keep, daemon=True, name="darkroom-replica-parent").start()
        spawned.wait()
        if "error" in started:
            raise RuntimeError(f"cannot start a replica: {started['error']}")
        self.replica: Replica = started["replica"]
        self.spec = spec
        deadline = time.monotonic() + LOAD_WAIT_S
        while not self.replica.ready.wait(0.1):
            if self.replica.dead.is_set() or time.monotonic() > deadline:
                self.replica.stop()
                raise RuntimeError(self.replica.failure())

    async def __call__(self, request: Request) -> JSONResponse:
        payload = await request.body()
        try:
            answer = await asyncio.wrap_future(self.replica.submit(payload))
        except ReplicaLost as exc:
            return JSONResponse({"code": exc.code, "message": exc.message}, status_code=503)
        spec = self.spec
        return JSONResponse({"answer": answer, "revision_id": spec.revision_id,
                             "revision": spec.revision,
                             "model_version_id": spec.model_version_id})  # fmt: skip

    def check_health(self) -> None:
        """Serve replaces a replica whose process is gone."""
        if self.replica.dead.is_set():
            raise RuntimeError(f"the replica process ended: {self.replica.failure()}")

    def __del__(self) -> None:
        replica = getattr(self, "replica", None)
        if replica is not None:
            replica.stop()


def app(args: dict[str, Any]) -> Application:
    """The application builder Serve's config names (`darkroom.serving.ray_app:app`)."""
    return DarkroomReplica.bind(args)
