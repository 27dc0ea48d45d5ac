"""What a run does with its run token: its context, output, progress, and its writes
(annotations, versions, evaluations, metrics), each sent with an idempotency key so a retry
writes once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from darkroom.client._transport import (
    JSON,
    TRANSFER_TIMEOUT_S,
    Transport,
    idempotency_key,
)

__all__ = ["RunTokenApi"]


class RunTokenApi(Transport):
    """A run's own calls (the runtime SDK's `ProcessingContext` makes them)."""

    # -- runtime (with a run token) -----------------------------------------------------------
    # Writes carry an Idempotency-Key, so that a retry after a lost answer does not repeat them.

    def run_context(self, run_id: int) -> JSON:
        return self._json("GET", f"/runs/{run_id}/context")

    def ship_run_output(self, run_id: int, lines: Sequence[tuple[str, str, str]]) -> JSON:
        """(ISO time, stream, text) lines into the run's log: a node running it remotely."""
        body = {"lines": [{"ts": ts, "stream": stream, "text": text} for ts, stream, text in lines]}
        return self._json("POST", f"/runs/{run_id}/output", json=body, headers=idempotency_key())

    def report_run_progress(self, run_id: int, done: int, total: int | None) -> JSON:
        return self._json(
            "POST", f"/runs/{run_id}/progress", json={"done": done, "total": total},
            headers=idempotency_key(),
        )  # fmt: skip

    def add_run_annotations(self, run_id: int, items: list[JSON], done: Sequence[int] = ()) -> JSON:
        """Shapes on many assets (`{"asset_id", "shapes"}` items) in one transaction; `done`:
        assets finished without shapes."""
        return self._json(
            "POST", f"/runs/{run_id}/annotations", json={"items": items, "done": list(done)},
            headers=idempotency_key(),
        )  # fmt: skip

    def clear_previous_run_annotations(self, run_id: int, earlier_jobs: bool = False) -> JSON:
        return self._json(
            "POST",
            f"/runs/{run_id}/clear-previous-annotations",
            headers=idempotency_key(),
            params={"earlier_jobs": "true"} if earlier_jobs else None,
        )

    def finished_assets(self, run_id: int) -> list[int]:
        """Asset ids the earlier runs of the run's job finished."""
        return self._json("GET", f"/runs/{run_id}/finished-assets")

    def record_evaluation(self, run_id: int, metrics: JSON) -> JSON:
        """Stores what a model-evaluation run measured (its job's model on its version)."""
        return self._json(
            "POST", f"/runs/{run_id}/evaluation", json=metrics, headers=idempotency_key()
        )

    def add_run_model_version(
        self,
        run_id: int,
        path: str | Path,
        *,
        name: str,
        family: str | None = None,
        labels: list[str] | None = None,
        metadata: JSON | None = None,
    ) -> JSON:
        """A new version of the model the run's job runs on, made by the run (converted
        weights); family and labels default to the source version's."""
        form = {"name": name}
        if family:
            form["family"] = family
        if labels is not None:
            form["labels"] = json.dumps(labels)
        if metadata is not None:
            form["metadata"] = json.dumps(metadata)
        with Path(path).open("rb") as fh:
            return self._json(
                "POST", f"/runs/{run_id}/model-versions", data=form,
                files={"file": (Path(path).name, fh, "application/octet-stream")},
                headers=idempotency_key(), timeout=TRANSFER_TIMEOUT_S,
            )  # fmt: skip

    def list_evaluations(self, model_version_id: int) -> list[JSON]:
        return self._json("GET", f"/model-versions/{model_version_id}/evaluations")

    def create_run_output_version(
        self,
        run_id: int,
        name: str,
        *,
        description: str = "",
        copy_input: bool = True,
        asset_ids: Sequence[int] | None = None,
        tags: dict[int, list[str]] | None = None,
    ) -> JSON:
        body: JSON = {"name": name, "description": description, "copy_input": copy_input}
        if asset_ids is not None:
            body["asset_ids"] = list(asset_ids)
        if tags:
            body["tags"] = {str(k): v for k, v in tags.items()}
        return self._json(
            "POST", f"/runs/{run_id}/output-version", json=body, headers=idempotency_key()
        )

    def run_predictions(self, run_id: int, after: int | None = None, limit: int = 500) -> JSON:
        """A page, oldest first, of the predictions a run on a deployment reads: its job's
        deployment, within its job's window."""
        params = {"limit": limit, **({"after": after} if after is not None else {})}
        return self._json("GET", f"/runs/{run_id}/predictions", params=params)

    def record_run_metrics(self, run_id: int, metrics: JSON) -> JSON:
        """Stores a run's figures: numbers, or structures (histograms, counts) by name."""
        return self._json(
            "POST", f"/runs/{run_id}/metrics", json={"metrics": metrics}, headers=idempotency_key()
        )
