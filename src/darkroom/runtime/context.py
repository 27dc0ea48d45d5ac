"""`ProcessingContext`: parameters, inputs, outputs, progress and logging for one run."""

from __future__ import annotations

import io
import logging
import os
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from darkroom.client import Client

__all__ = ["LoadedAsset", "ProcessingContext", "TooManyFailures"]

PROGRESS_INTERVAL_S = 0.5
LOGGER_NAME = "darkroom.processing"


class TooManyFailures(RuntimeError):
    """More per-asset failures than the `max_failures` parameter allows; ends the run failed."""


@dataclass(frozen=True, slots=True)
class LoadedAsset:
    """An asset of the input version with its decoded RGB image (H x W x 3, uint8)."""

    asset: dict[str, Any]
    image: np.ndarray

    @property
    def id(self) -> int:
        return int(self.asset["id"])


class ProcessingContext:
    """Everything a processing may touch, scoped by the run's token to its own job."""

    def __init__(self, client: Client, run_id: int, context: dict[str, Any]) -> None:
        self.client = client
        self.run_id = run_id
        self.job_id: int = context["job_id"]
        self.attempt: int = context["attempt"]
        self.processing: dict[str, Any] = context["processing"]
        self.parameters: dict[str, Any] = context["parameters"]
        self.input_version: dict[str, Any] = context["target_version"]
        self.model_version: dict[str, Any] | None = context.get("model_version")
        self.log = logging.getLogger(LOGGER_NAME)
        self.failures = 0
        self._last_progress = 0.0

    @classmethod
    def from_env(cls) -> ProcessingContext:
        """The context of the run this process executes, from `DARKROOM_*` variables.

        The token comes from `DARKROOM_RUN_TOKEN_FILE` (how the sandbox passes it, so that no
        process environment holds it) or `DARKROOM_RUN_TOKEN`; `DARKROOM_SOCKET`, when set, is
        the Unix socket the server is reached through (a sandbox has no other network)."""
        try:
            url = os.environ["DARKROOM_URL"]
            token_file = os.environ.get("DARKROOM_RUN_TOKEN_FILE")
            token = (
                Path(token_file).read_text().strip()
                if token_file
                else os.environ["DARKROOM_RUN_TOKEN"]
            )
            run_id = int(os.environ["DARKROOM_RUN_ID"])
        except (KeyError, ValueError, OSError) as exc:
            raise RuntimeError(
                "not inside a darkroom run: DARKROOM_URL, DARKROOM_RUN_TOKEN (or "
                "DARKROOM_RUN_TOKEN_FILE) and DARKROOM_RUN_ID must be set"
            ) from exc
        client = Client(url, token, socket=os.environ.get("DARKROOM_SOCKET"))
        return cls(client, run_id, client.run_context(run_id))

    # -- inputs -------------------------------------------------------------------------------

    def iter_asset_pages(
        self, page_size: int = 200, **filters: Any
    ) -> Iterator[list[dict[str, Any]]]:
        """The input version's assets (metadata only), a page at a time."""
        after = None
        while True:
            page = self.client.list_assets(
                self.input_version["id"], after=after, limit=page_size, **filters
            )
            if page["items"]:
                yield page["items"]
            after = page["next"]
            if after is None:
                return

    def input_version_asset_count(self) -> int:
        return int(self.client.version_stats(self.input_version["id"])["assets"])

    def iter_assets(
        self, batch_size: int = 8, prefetch: int = 2, threads: int = 2, **filters: Any
    ) -> Iterator[list[LoadedAsset]]:
        """Batches of decoded images of the input version, `prefetch` batches ahead.

        Each batch is fetched in one request and decoded in a background thread while the
        caller works on the ones before. An image that cannot be read is logged and counted as
        a failure (see `record_failure`) and left out of its batch.
        """
        pending: deque[tuple[list[dict[str, Any]], Future[list[Any]]]] = deque()
        with ThreadPoolExecutor(threads, thread_name_prefix="darkroom-load") as pool:
            group: list[dict[str, Any]] = []
            for page in self.iter_asset_pages(page_size=max(batch_size * 4, 100), **filters):
                for asset in page:
                    group.append(asset)
                    if len(group) == batch_size:
                        pending.append((group, pool.submit(self._load_batch, group)))
                        group = []
                        while len(pending) > prefetch:
                            yield from self._ready(*pending.popleft())
            if group:
                pending.append((group, pool.submit(self._load_batch, group)))
            while pending:
                yield from self._ready(*pending.popleft())

    def _load_batch(self, assets: list[dict[str, Any]]) -> list[np.ndarray | Exception]:
        """Decoded images, or the exception that stands for each one that could not be read."""
        try:
            found = self.client.download_images(self.input_version["id"], [a["id"] for a in assets])
        except Exception as exc:
            return [exc] * len(assets)
        out: list[np.ndarray | Exception] = []
        for asset in assets:
            try:
                if asset["id"] not in found:
                    raise LookupError("not in the input version any more")
                with Image.open(io.BytesIO(found[asset["id"]])) as img:
                    out.append(np.asarray(img.convert("RGB")))
            except Exception as exc:  # a bad image must not end the run by itself
                out.append(exc)
        return out

    def _ready(
        self, assets: list[dict[str, Any]], future: Future[list[Any]]
    ) -> Iterator[list[LoadedAsset]]:
        batch = []
        for asset, image in zip(assets, future.result(), strict=True):
            if isinstance(image, Exception):
                self.record_failure(f"asset {asset['id']} ({asset['filename']})", image)
            else:
                batch.append(LoadedAsset(asset, image))
        if batch:
            yield batch

    def record_failure(self, what: str, exc: BaseException) -> None:
        """Logs and counts a per-item failure; past `max_failures` the run fails."""
        self.failures += 1
        self.log.warning("failed on %s: %s", what, exc)
        limit = self.parameters.get("max_failures")
        if limit is not None and self.failures > limit:
            raise TooManyFailures(f"{self.failures} failures, more than max_failures={limit}")

    def model_path(self) -> Path:
        """The job's model weights on local disk, downloaded once per content hash and cached
        in `DARKROOM_CACHE` (default `~/.cache/darkroom`)."""
        if self.model_version is None:
            raise RuntimeError("this job has no model version")
        cache = Path(os.environ.get("DARKROOM_CACHE", Path.home() / ".cache" / "darkroom"))
        path = cache / "models" / f"{self.model_version['weights_sha256']}.onnx"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            self.log.info("downloading model weights %s", self.model_version["weights_sha256"][:12])
            self.client.download_weights(self.model_version["id"], path)
        return path

    # -- outputs ------------------------------------------------------------------------------

    def add_annotations(self, items: list[dict[str, Any]]) -> int:
        """Adds shapes as this run's annotations: items of `{"asset_id", "shapes": [...]}`."""
        return int(self.client.add_run_annotations(self.run_id, items)["shapes_added"])

    def clear_previous_runs_annotations(self) -> int:
        """Deletes the annotations of this job's earlier runs; a re-run starts clean."""
        return int(self.client.clear_previous_run_annotations(self.run_id)["deleted"])

    def create_output_version(
        self, name: str, *, description: str = "", copy_input: bool = True
    ) -> dict[str, Any]:
        """A new version of the input's dataset, produced by this job (its lineage says so)."""
        return self.client.create_run_output_version(
            self.run_id, name, description=description, copy_input=copy_input
        )

    def progress(self, done: int, total: int | None = None, *, force: bool = False) -> None:
        """Reports progress; calls closer than 0.5 s apart are coalesced unless forced."""
        now = time.monotonic()
        final = total is not None and done >= total
        if not (force or final) and now - self._last_progress < PROGRESS_INTERVAL_S:
            return
        self._last_progress = now
        self.client.report_run_progress(self.run_id, done, total)
