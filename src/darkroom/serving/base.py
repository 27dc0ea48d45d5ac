"""What the routes need of whatever serves deployments: this machine's replicas
(`supervisor.Supervisor`) or Ray Serve applications (`ray_serving.RayServing`)."""

from __future__ import annotations

from typing import Any, Protocol

from darkroom.serving.supervisor import Served

__all__ = ["Serving"]


class Serving(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...

    def wake(self) -> None:
        """A deployment changed: reconcile now rather than at the next tick."""

    async def predict(self, deployment_id: int, name: str, payload: bytes) -> Served:
        """The deployment's answer for one image; `Unavailable` or `ReplicaLost` (503)."""

    def replicas_of(self, deployment_id: int) -> list[dict[str, Any]]:
        """Its replicas as this server knows them, for `GET /deployments/{id}` and its page."""
