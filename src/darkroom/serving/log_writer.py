"""The prediction log's group commit: a predict answers once its row is stored, and rows that
arrive together are stored in one transaction.

One thread takes every row queued while the previous transaction committed (up to
`MAX_BATCH`), stores the sampled images, inserts the rows and resolves each request's future
with its id. A lone request pays one small transaction; under load the cost per row falls with
the batch. A 2xx from predict therefore means the prediction is logged; nothing acknowledged is
lost when the server is killed.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import Any

from sqlalchemy import Engine

from darkroom.domain.blobs import register_blobs
from darkroom.domain.predictions import record_predictions
from darkroom.storage import BlobStore

__all__ = ["PredictionLog"]

log = logging.getLogger(__name__)

MAX_BATCH = 500


class PredictionLog:
    def __init__(self, engine: Engine, store: BlobStore) -> None:
        self.engine, self.store = engine, store
        self._queue: queue.Queue[tuple[dict[str, Any], bytes | None, Future[int]] | None] = (
            queue.Queue()
        )
        self._thread = threading.Thread(target=self._run, name="darkroom-prediction-log",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def write(self, row: dict[str, Any], image: bytes | None = None) -> Future[int]:
        """Queues a row (columns of `Prediction`); the future holds its id once committed.
        `image`: the sampled image, stored as a blob the row references."""
        future: Future[int] = Future()
        self._queue.put((row, image, future))
        return future

    def close(self) -> None:
        """Stores what is queued, then stops."""
        self._queue.put(None)
        self._thread.join(30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._store(batch)
            if stop:
                return

    def _store(self, batch: list[tuple[dict[str, Any], bytes | None, Future[int]]]) -> None:
        try:
            blobs = []
            for row, image, _ in batch:
                mime = row.pop("image_mime", None)
                row["image_sha256"] = None  # one insert takes rows of the same columns
                if image is not None:
                    stored = self.store.put_bytes(image)
                    row["image_sha256"] = stored.sha256
                    blobs.append((stored.sha256, len(image), mime or "image/jpeg"))
            with self.engine.begin() as conn:
                register_blobs(conn, blobs)
                ids = record_predictions(conn, [row for row, _, _ in batch])
        except Exception as exc:
            log.exception("the prediction log could not store %d rows", len(batch))
            for _, _, future in batch:
                future.set_exception(exc)
            return
        for (_, _, future), row_id in zip(batch, ids, strict=True):
            future.set_result(row_id)
