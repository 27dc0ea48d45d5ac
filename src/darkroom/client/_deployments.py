"""Deployments: a served model version, its predictions kept, and the figures over them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from darkroom.client._transport import (
    JSON,
    Transport,
)

__all__ = ["DeploymentsApi"]


class DeploymentsApi(Transport):
    """Serving model versions."""

    # -- deployments ----------------------------------------------------------------------------

    def create_deployment(
        self,
        name: str,
        model_version_id: int,
        *,
        settings: JSON | None = None,
        description: str = "",
    ) -> JSON:
        """Serves a model version (settings: see `POST /deployments`)."""
        body = {"name": name, "model_version_id": model_version_id, "settings": settings,
                "description": description}  # fmt: skip
        return self._json("POST", "/deployments", json=body)

    def list_deployments(self, model_version_id: int | None = None) -> list[JSON]:
        return list(self._iter("/deployments", {"model_version_id": model_version_id}))

    def get_deployment(self, ident: int | str) -> JSON:
        return self._json("GET", f"/deployments/{ident}")

    def update_deployment(
        self,
        ident: int | str,
        *,
        model_version_id: int | None = None,
        settings: JSON | None = None,
        description: str | None = None,
    ) -> JSON:
        """A rollout to another model version, or new settings: a new revision."""
        body = {"model_version_id": model_version_id, "settings": settings,
                "description": description}  # fmt: skip
        return self._json(
            "PATCH", f"/deployments/{ident}", json={k: v for k, v in body.items() if v is not None}
        )

    def stop_deployment(self, ident: int | str) -> JSON:
        return self._json("POST", f"/deployments/{ident}/stop")

    def start_deployment(self, ident: int | str) -> JSON:
        return self._json("POST", f"/deployments/{ident}/start")

    def deployment_revisions(self, ident: int | str) -> list[JSON]:
        return self._json("GET", f"/deployments/{ident}/revisions")

    def create_deployment_token(self, ident: int | str, name: str = "") -> JSON:
        """`{"id", "name", "deployment_id", "token"}`: the token may call predict only."""
        return self._json("POST", f"/deployments/{ident}/tokens", json={"name": name})

    def predict(self, ident: int | str, image: bytes | str | Path) -> JSON:
        """The deployment's boxes for one image (bytes, or a file's path)."""
        data = image if isinstance(image, bytes) else Path(image).read_bytes()
        return self._json("POST", f"/deployments/{ident}/predict", content=data,
                          headers={"Content-Type": "application/octet-stream"})  # fmt: skip

    def list_predictions(self, ident: int | str, **filters: Any) -> JSON:
        """A page of the prediction log; filters `since`, `until`, `label`, `min_score`,
        `model_version_id`, `review_status`, and `after`, `limit`, `order` (newest|oldest)."""
        params = {k: v for k, v in filters.items() if v is not None}
        return self._json("GET", f"/deployments/{ident}/predictions", params=params)

    def deployment_figures(self, ident: int | str, minutes: int = 60) -> JSON:
        return self._json("GET", f"/deployments/{ident}/figures", params={"minutes": minutes})
