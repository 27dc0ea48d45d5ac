"""What launches jobs without a click: pipelines of steps, triggers, and the webhooks told
of what ended."""

from __future__ import annotations

from typing import Any

from darkroom.client._transport import (
    JSON,
    Transport,
)

__all__ = ["AutomationApi"]


class AutomationApi(Transport):
    """Pipelines, triggers and webhooks."""

    # -- pipelines ---------------------------------------------------------------------------

    def create_pipeline(self, name: str, steps: list[JSON], description: str = "") -> JSON:
        """A pipeline with its revision 1 (steps: see `POST /pipelines`)."""
        body = {"name": name, "steps": steps, "description": description}
        return self._json("POST", "/pipelines", json=body)

    def add_pipeline_revision(self, ident: int | str, steps: list[JSON]) -> JSON:
        return self._json("POST", f"/pipelines/{ident}/revisions", json={"steps": steps})

    def list_pipelines(self) -> list[JSON]:
        return list(self._iter("/pipelines", {}))

    def get_pipeline(self, ident: int | str) -> JSON:
        return self._json("GET", f"/pipelines/{ident}")

    def launch_pipeline(
        self, ident: int | str, input_version_id: int, revision: int | None = None
    ) -> JSON:
        """A pipeline run on the version; its first steps are pending jobs."""
        body = {"input_version_id": input_version_id, "revision": revision}
        return self._json("POST", f"/pipelines/{ident}/launch", json=body)

    def list_pipeline_runs(self, ident: int | str) -> list[JSON]:
        return list(self._iter(f"/pipelines/{ident}/runs", {}))

    def get_pipeline_run(self, run_id: int) -> JSON:
        return self._json("GET", f"/pipeline-runs/{run_id}")

    def rerun_pipeline_run(self, run_id: int) -> JSON:
        """Re-runs its failed and cancelled steps; the succeeded ones are kept."""
        return self._json("POST", f"/pipeline-runs/{run_id}/rerun")

    def cancel_pipeline_run(self, run_id: int) -> JSON:
        return self._json("POST", f"/pipeline-runs/{run_id}/cancel")

    # -- triggers ----------------------------------------------------------------------------

    def create_trigger(self, name: str, kind: str, **fields: Any) -> JSON:
        """A trigger (`kind`: assets, version or schedule) that launches `pipeline=` or
        `processing=`; the other fields as `POST /triggers` takes them."""
        body = {"name": name, "kind": kind, **{k: v for k, v in fields.items() if v is not None}}
        return self._json("POST", "/triggers", json=body)

    def list_triggers(self) -> list[JSON]:
        return list(self._iter("/triggers", {}))

    def get_trigger(self, trigger_id: int) -> JSON:
        return self._json("GET", f"/triggers/{trigger_id}")

    def set_trigger_enabled(self, trigger_id: int, enabled: bool) -> JSON:
        return self._json("PATCH", f"/triggers/{trigger_id}", json={"enabled": enabled})

    def delete_trigger(self, trigger_id: int) -> None:
        self._json("DELETE", f"/triggers/{trigger_id}")

    # -- webhooks ----------------------------------------------------------------------------

    def create_webhook(
        self, url: str, events: list[str] | None = None, secret: str | None = None
    ) -> JSON:
        """A webhook; the answer holds its `secret` (shown once), which signs every body."""
        return self._json("POST", "/webhooks", json={"url": url, "events": events,
                                                      "secret": secret})  # fmt: skip

    def list_webhooks(self) -> list[JSON]:
        return list(self._iter("/webhooks", {}))

    def update_webhook(self, webhook_id: int, **fields: Any) -> JSON:
        """`enabled`, `url`, `events`."""
        return self._json("PATCH", f"/webhooks/{webhook_id}", json=fields)

    def delete_webhook(self, webhook_id: int) -> None:
        self._json("DELETE", f"/webhooks/{webhook_id}")

    def webhook_deliveries(self, webhook_id: int) -> list[JSON]:
        """Its delivery log, oldest first: event, status, attempts, last answer or error."""
        return list(self._iter(f"/webhooks/{webhook_id}/deliveries", {}))
