"""The server's side of serving when the executor is Ray: deployments as Ray Serve applications.

Each deployment that should serve is one Serve application on the cluster,
`darkroom-{instance}-deployment-{id}`, whose replicas (`serving.ray_app`) run the same sandboxed
replica process a local server would. This side only talks HTTP: it declares the applications
through the dashboard's Serve REST API (`PUT /api/serve/applications/`, the whole config at
once, so applications that are not this instance's are sent back as they were), reads their
status from it, and forwards each predict to Serve's HTTP proxy. A thread reconciles every
`RECONCILE_S` (sooner when woken): a new revision changes the application's arguments, which
Serve rolls out replica by replica; a stopped deployment's application is removed, which stops
its replicas; an application Serve could not deploy fails the deployment with Serve's message.
The server itself needs neither Ray nor a driver connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit

import httpx

from darkroom.background import Loop
from darkroom.db.engine import SessionFactory, session_scope
from darkroom.db.models import Deployment, DeploymentStatus
from darkroom.domain import deployments as deployments_domain
from darkroom.domain.resources import RunResources
from darkroom.serving.supervisor import (
    READY_WAIT_S,
    RECONCILE_S,
    ReplicaLost,
    Served,
    Unavailable,
    set_spec,
)

__all__ = ["RayServing", "application_name"]

log = logging.getLogger(__name__)

IMPORT_PATH = "darkroom.serving.ray_app:app"
DEPLOYMENT = "replica"  # as in serving.ray_app
REASON_CHARS = 2000
REQUEST_TIMEOUT_S = 120.0


def application_name(instance: str, deployment_id: int) -> str:
    return f"darkroom-{instance}-deployment-{deployment_id}"


class RayServing(Loop):
    """Deployments served by Ray Serve; the same calls as `Supervisor` for the routes."""

    def __init__(
        self,
        sessions: SessionFactory,
        *,
        dashboard: str,
        serve_url: str,
        server_url: str,
        limits: RunResources,
        sandbox_mode: str,
        instance: str,
        on_status: Callable[[], None] = lambda: None,
    ) -> None:
        """`dashboard`: the cluster's dashboard (Serve REST API); `serve_url`: Serve's HTTP proxy,
        started at that port by the first declaration; `server_url`: this server, as the
        replicas reach it for their weights."""
        super().__init__("darkroom-ray-serving", RECONCILE_S)
        self.sessions = sessions
        self.dashboard, self.serve_url = dashboard.rstrip("/"), serve_url.rstrip("/")
        self.server_url = server_url
        self.limits, self.sandbox_mode, self.instance = limits, sandbox_mode, instance
        self.on_status = on_status
        self._prefix = f"darkroom-{instance}-deployment-"
        self._apps: dict[str, dict[str, Any]] = {}  # last seen Serve status, by application
        self._tokens: dict[int, str] = {}
        self._failed: dict[int, str] = {}
        self._http = httpx.Client(timeout=30)
        self._async: httpx.AsyncClient | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def step(self) -> None:
        self.reconcile()

    def finish(self) -> None:
        """The applications keep serving: they belong to the cluster."""
        self._http.close()

    # -- requests ------------------------------------------------------------------------------

    async def predict(self, deployment_id: int, name: str, payload: bytes) -> Served:
        """Serve's answer for the image; waits for a deploying application at most
        `READY_WAIT_S` (Serve's proxy says 404 or 503 until a replica is up)."""
        if self._async is None:
            self._async = httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S)
        url = f"{self.serve_url}/{application_name(self.instance, deployment_id)}"
        deadline = time.monotonic() + READY_WAIT_S
        while True:
            if deployment_id in self._failed:
                raise Unavailable(f"deployment {name!r} failed: {self._failed[deployment_id]}")
            try:
                response = await self._async.post(url, content=payload)
            except httpx.TransportError as exc:
                response, why = None, f"Ray Serve does not answer at {self.serve_url}: {exc}"
            else:
                why = f"no replica of deployment {name!r} answers yet ({response.status_code})"
                if response.status_code == 200:
                    got = response.json()
                    return Served(got["answer"], got["revision_id"], got["revision"],
                                  got["model_version_id"])  # fmt: skip
                if response.status_code == 503 and _code(response) == ReplicaLost.code:
                    raise ReplicaLost("the replica serving this request died; try again")
            if time.monotonic() > deadline:
                raise Unavailable(why)
            self.wake()
            await asyncio.sleep(0.1)

    def replicas_of(self, deployment_id: int) -> list[dict[str, Any]]:
        """Serve's replicas of the deployment as last seen (pids are the actors')."""
        found = self._apps.get(application_name(self.instance, deployment_id)) or {}
        revision = ((found.get("deployed_app_config") or {}).get("args") or {}).get("spec", {})
        out = []
        for replica in (found.get("deployments") or {}).get(DEPLOYMENT, {}).get("replicas", []):
            state = {"RUNNING": "ready", "STARTING": "starting", "STOPPING": "retiring"}.get(
                replica.get("state", ""), str(replica.get("state", "")).lower()
            )
            out.append({"revision": revision.get("revision"), "pid": replica.get("pid"),
                        "state": state, "restarts": 0, "inflight": 0,
                        "node": replica.get("node_ip")})  # fmt: skip
        return out

    # -- reconciling -------------------------------------------------------------------------------

    def reconcile(self) -> None:
        got = self._http.get(f"{self.dashboard}/api/serve/applications/")
        got.raise_for_status()
        details = got.json()
        applications: dict[str, dict[str, Any]] = details.get("applications") or {}
        self._apps = applications
        with session_scope(self.sessions) as session:
            found = deployments_domain.wanted_deployments(session)
            reported = {d.id: (d.status, d.status_reason) for d in found}
            wanted: dict[str, dict[str, Any]] = {}
            for deployment in found:
                name = application_name(self.instance, deployment.id)
                deployed = (applications.get(name) or {}).get("deployed_app_config") or {}
                reuse = (deployed.get("args") or {}).get("token") or self._tokens.get(deployment.id)
                token = deployments_domain.replica_token(session, deployment.id, reuse)
                self._tokens[deployment.id] = token
                wanted[name] = self._application(deployment, token)
            for name in applications:
                if name.startswith(self._prefix) and name not in wanted:
                    gone = int(name.removeprefix(self._prefix))
                    deployments_domain.revoke_replica_tokens(session, gone)
                    self._tokens.pop(gone, None)
        self._failed = {i: why for i, why in self._failed.items() if i in reported}
        if self._differs(applications, wanted):
            self._declare(details, wanted)
        for deployment_id, (status, reason) in self._statuses(applications, reported).items():
            if (status, reason) == reported[deployment_id]:
                continue
            with session_scope(self.sessions) as session:
                revision_id = session.get(Deployment, deployment_id).revision_id
                deployments_domain.set_status(session, deployment_id, revision_id, status, reason)
            self.on_status()

    def _application(self, deployment: Any, token: str) -> dict[str, Any]:
        spec = set_spec(deployment)
        settings = deployment.revision.settings
        replicas = int(settings["replicas"])
        args = {
            "spec": {**asdict(spec), "weights": ""}, "token": token,
            "server_url": self.server_url, "limits": asdict(self.limits),
            "sandbox_mode": self.sandbox_mode, "instance": self.instance, "threads": 1,
        }  # fmt: skip
        name = application_name(self.instance, deployment.id)
        return {
            "name": name, "route_prefix": f"/{name}", "import_path": IMPORT_PATH, "args": args,
            "deployments": [{
                "name": DEPLOYMENT, "num_replicas": replicas,
                "max_ongoing_requests": max(8, 2 * int(settings["max_batch"])),
                "ray_actor_options": {"num_cpus": 1},
            }],
        }  # fmt: skip

    def _differs(self, applications: dict[str, Any], wanted: dict[str, dict[str, Any]]) -> bool:
        ours = {n for n in applications if n.startswith(self._prefix)}
        if ours != set(wanted):
            return True
        for name, application in wanted.items():
            deployed = applications[name].get("deployed_app_config") or {}
            if json.dumps(deployed.get("args"), sort_keys=True) != json.dumps(
                application["args"], sort_keys=True
            ):
                return True
            options = {d.get("name"): d for d in deployed.get("deployments") or []}
            if (
                options.get(DEPLOYMENT, {}).get("num_replicas")
                != (application["deployments"][0]["num_replicas"])
            ):
                return True
        return False

    def _declare(self, details: dict[str, Any], wanted: dict[str, dict[str, Any]]) -> None:
        """Puts the whole Serve config: ours as wanted, the others' as deployed."""
        others = [
            app["deployed_app_config"]
            for name, app in (details.get("applications") or {}).items()
            if not name.startswith(self._prefix) and app.get("deployed_app_config")
        ]
        parts = urlsplit(self.serve_url)
        host = parts.hostname or "127.0.0.1"
        config = {
            "http_options": {
                "host": host if host in ("127.0.0.1", "localhost") else "0.0.0.0",
                "port": parts.port or 8000,
            },
            "applications": [*others, *wanted.values()],
        }
        log.info("serving on Ray: declaring %d application(s) of this instance", len(wanted))
        put = self._http.put(f"{self.dashboard}/api/serve/applications/", json=config)
        if put.status_code >= 400:
            raise RuntimeError(f"Ray Serve refused the applications ({put.status_code}): "
                               f"{put.text[:REASON_CHARS]}")  # fmt: skip

    def _statuses(
        self, applications: dict[str, Any], reported: dict[int, tuple[str, str | None]]
    ) -> dict[int, tuple[str, str | None]]:
        out: dict[int, tuple[str, str | None]] = {}
        for deployment_id in reported:
            found = applications.get(application_name(self.instance, deployment_id)) or {}
            state = found.get("status", "NOT_STARTED")
            if state == "RUNNING":
                self._failed.pop(deployment_id, None)
                out[deployment_id] = (DeploymentStatus.serving, None)
            elif state == "DEPLOY_FAILED":
                reason = _reason(found)
                self._failed[deployment_id] = reason
                out[deployment_id] = (DeploymentStatus.failed, reason)
            else:
                self._failed.pop(deployment_id, None)
                out[deployment_id] = (DeploymentStatus.starting, None)
        return out


def _code(response: httpx.Response) -> str | None:
    try:
        return response.json().get("code")
    except ValueError:
        return None


def _reason(application: dict[str, Any]) -> str:
    """Serve's message, the replica's own first: it holds the model's load error."""
    messages = [d.get("message", "") for d in (application.get("deployments") or {}).values()]
    text = next((m for m in messages if m), "") or application.get("message", "")
    marker = "the model does not load"
    if marker in text:
        text = text[text.index(marker) :]
    return (text or "Ray Serve could not deploy the application").strip()[:REASON_CHARS]
