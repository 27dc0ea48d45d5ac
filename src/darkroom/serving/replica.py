"""A replica: `python -m darkroom.serving.replica CONFIG_JSON`, one process serving one revision
of a deployment.

It loads the model once (the predictor a pre-annotation run builds, with the deployment's
thresholds), says it is ready on its stdout, then answers the images that arrive on its stdin
in dynamic batches: the first image waits at most `max_wait_ms` for others, and only while the
server says more requests are in flight than the replica holds (a lone request goes at once),
up to `max_batch`. A reader thread keeps taking requests while a batch runs, so under load the
next batch is already waiting. It exits when its stdin closes (the server is gone or retired
it). Shapes are drawn as `yolo-preannotation` draws them, with the model's label names.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from darkroom.serving.protocol import CONTROL_ID, read_request, write_answer

__all__ = ["Replica", "main"]

log = logging.getLogger("darkroom.replica")
LOAD_FAILED_EXIT = 3


@dataclass(slots=True)
class Request:
    id: int
    data: bytes
    inflight: int
    received: float  # perf_counter


class Replica:
    """Batches requests from `inbox` through `predictor` and writes each answer to `out`."""

    def __init__(
        self,
        predictor: Any,
        labels: dict[int, str],
        model_labels: list[str],
        out: BinaryIO,
        *,
        max_batch: int,
        max_wait_ms: float,
    ) -> None:
        self.predictor, self.labels, self.model_labels = predictor, labels, model_labels
        self.out = out
        self.max_batch, self.max_wait_s = max_batch, max_wait_ms / 1000
        self.inbox: queue.Queue[Request | None] = queue.Queue()

    def read(self, stream: BinaryIO) -> None:
        """Feeds the inbox from `stream` until it ends."""
        while (frame := read_request(stream)) is not None:
            request_id, data, inflight = frame
            self.inbox.put(Request(request_id, data, inflight, time.perf_counter()))
        self.inbox.put(None)

    def serve(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._answer(batch)

    def _next_batch(self) -> list[Request] | None:
        first = self.inbox.get()
        if first is None:
            return None
        batch = [first]
        deadline = first.received + self.max_wait_s
        while len(batch) < self.max_batch:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                waiting_for_more = max(r.inflight for r in batch) > len(batch)
                left = deadline - time.perf_counter()
                if not waiting_for_more or left <= 0:
                    break
                try:
                    item = self.inbox.get(timeout=left)
                except queue.Empty:
                    break
            if item is None:
                self.inbox.put(None)  # ends the loop after this batch
                break
            batch.append(item)
        return batch

    def _answer(self, batch: list[Request]) -> None:
        from darkroom.processings.detection import to_shapes
        from darkroom.runtime.decoding import decode_rgb

        started = time.perf_counter()
        images, ready = [], []
        for request in batch:
            try:
                images.append(decode_rgb(request.data))
                ready.append(request)
            except Exception as exc:
                message = f"the image does not decode: {exc}"
                answer = {"ok": False, "code": "corrupt_image", "message": message}
                write_answer(self.out, request.id, answer)
        if not ready:
            return
        try:
            detections = self.predictor.predict(images)
        except Exception as exc:
            log.exception("inference failed")
            for request in ready:
                message = f"{type(exc).__name__}: {exc}"
                answer = {"ok": False, "code": "inference_failed", "message": message}
                write_answer(self.out, request.id, answer)
            return
        inference_ms = (time.perf_counter() - started) * 1000
        for request, dets in zip(ready, detections, strict=True):
            shapes = to_shapes(dets, self.labels, self.model_labels, Counter(), Counter())
            write_answer(self.out, request.id, {
                "ok": True, "shapes": shapes, "batch": len(ready),
                "queue_ms": (started - request.received) * 1000, "inference_ms": inference_ms,
            })  # fmt: skip


def kept_labels(model_labels: list[str], kept: list[str] | None) -> dict[int, str]:
    """Class id -> label name for the classes the deployment keeps (all when `kept` is None)."""
    if kept is None:
        return dict(enumerate(model_labels))
    wanted = {name.lower() for name in kept}
    return {i: name for i, name in enumerate(model_labels) if name.lower() in wanted}


def main(argv: list[str]) -> int:
    import json

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s replica %(levelname)s %(message)s")  # fmt: skip
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the frames
    config = json.loads(argv[0])
    settings = config["settings"]
    started = time.perf_counter()
    try:
        from darkroom.processings.detection import predictor_for
        from darkroom.runtime.contract import ModelVersion

        model = ModelVersion.model_validate(config["model_version"])
        predictor = predictor_for(
            Path(config["weights"]), model, confidence_threshold=settings["confidence_threshold"],
            max_detections=settings["max_detections"], iou_threshold=settings["iou_threshold"],
            threads=config.get("threads"), spinning=True,  # a replica only waits for latency
        )  # fmt: skip
    except Exception as exc:
        log.exception("the model does not load")
        write_answer(out, CONTROL_ID, {"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return LOAD_FAILED_EXIT
    replica = Replica(
        predictor, kept_labels(model.labels, settings["labels"]), model.labels, out,
        max_batch=settings["max_batch"], max_wait_ms=settings["max_wait_ms"],
    )  # fmt: skip
    load_s = time.perf_counter() - started
    log.info("model %s/%s loaded in %.2f s", model.model, model.name, load_s)
    write_answer(out, CONTROL_ID, {"ready": True, "load_s": load_s, "pid": os.getpid()})
    reader = threading.Thread(target=replica.read, args=(sys.stdin.buffer,), daemon=True)
    reader.start()
    replica.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
