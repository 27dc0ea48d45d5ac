"""`ProcessingContext`: parameters, inputs, outputs, progress and logging for one run."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import resource
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from darkroom.client import Client
from darkroom.deprecation import deprecated
from darkroom.runtime.contract import (
    AnnotationItem,
    Asset,
    Deployment,
    Evaluation,
    EvaluationMetrics,
    Label,
    Limits,
    ModelVersion,
    Prediction,
    ProcessingInfo,
    RunContext,
    StoredAnnotation,
    Version,
    VersionStats,
    Window,
)
from darkroom.runtime.decoding import decode_rgb
from darkroom.runtime.prepared import BLOBS_ENV, GPUS_ENV, cache_root

__all__ = ["LoadedAsset", "ProcessingContext", "TooManyFailures"]

PROGRESS_INTERVAL_S = 0.5
LOGGER_NAME = "darkroom.processing"
# A run lives through a server restart: its requests are retried this long (the default run
# lease is 60 s; past it the run is lost anyway).
RETRY_FOR_S = 60.0
QUEUED_WRITES = 4
LOADER_NICENESS = 10
UPLOAD_CHUNK_FILES = 32
UPLOAD_CHUNK_BYTES = 16 * 1024**2
UPLOAD_THREADS = 2  # the server stores one request while the next is sent


def _count(value: str) -> int:
    return int(value) if value.isdigit() else 0


def _background_priority() -> None:
    """Loader threads yield the cores to the processing's own work (a model's threads split
    each operation evenly: one of them preempted by a decode stalls the others) and use
    what is idle. Linux schedules threads by their own nice value."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOADER_NICENESS)


class TooManyFailures(RuntimeError):
    """More per-asset failures than the `max_failures` parameter allows; ends the run failed."""


@dataclass(frozen=True, slots=True)
class LoadedAsset:
    """An asset of the input version with its decoded RGB image (H x W x 3, uint8), and every
    author's annotations of it when `iter_assets(with_annotations=True)` fetched them."""

    asset: Asset
    image: np.ndarray
    annotations: list[StoredAnnotation] | None = None

    @property
    def id(self) -> int:
        return self.asset.id


AnnotationRows = Sequence[AnnotationItem | dict[str, Any]]


class ProcessingContext:
    """Everything a processing may touch, scoped by the run's token to its own job.

    Requests are split to fit the server's published `limits`, and retried through a server
    restart (writes carry an idempotency key, so a retry never writes twice)."""

    def __init__(self, client: Client, context: RunContext) -> None:
        self._client = client
        self.context = context
        self.run_id = context.run_id
        self.job_id = context.job_id
        self.attempt = context.attempt
        self.processing: ProcessingInfo = context.processing
        self.parameters: dict[str, Any] = context.parameters
        # None for a job on a model without sample images (model-conversion)
        self.input_version: Version | None = context.target_version
        self.model_version: ModelVersion | None = context.model_version
        # A job on a deployment: the deployment and the window of its predictions it reads.
        self.deployment: Deployment | None = context.deployment
        self.window: Window | None = context.window
        self.limits: Limits = context.limits
        self.resume = context.resume
        # GPUs this run was lent (its processing's `resources.gpus`), numbered from 0 as the
        # run sees them; 0 on a CPU. `darkroom.inference.create_session(gpus=ctx.gpus)` uses them.
        self.gpus: int = _count(os.environ.get(GPUS_ENV, ""))
        self.log = logging.getLogger(LOGGER_NAME)
        self.failures = 0
        self.cache = cache_root()
        self._blobs = Path(os.environ[BLOBS_ENV]) if os.environ.get(BLOBS_ENV) else None
        self._last_progress = 0.0
        self._progress = _LatestSender(self._send_progress)
        self._skip: frozenset[int] | None = None
        # Seconds spent per step of the data path (summed over threads) and items moved.
        self.timings: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self._timings_lock = threading.Lock()
        self.queued_shapes = 0  # written so far by `queue_annotations`
        self._writer: threading.Thread | None = None
        self._writes: queue.Queue[tuple[list[dict[str, Any]], list[int]]] = queue.Queue()
        self._write_error: BaseException | None = None

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
        client = Client(
            url, token, socket=os.environ.get("DARKROOM_SOCKET"), retry_for_s=RETRY_FOR_S
        )
        return cls(client, RunContext.model_validate(client.run_context(run_id)))

    # -- inputs -------------------------------------------------------------------------------

    def _input_id(self) -> int:
        if self.input_version is None:
            raise RuntimeError("this run's job has no dataset version to read")
        return self.input_version.id

    def labels(self) -> list[Label]:
        """The input version's labels, in their order."""
        return [Label.model_validate(x) for x in self._client.list_labels(self._input_id())]

    def stats(self) -> VersionStats:
        """Counts of the input version: assets, annotated assets, shapes per label."""
        return VersionStats.model_validate(self._client.version_stats(self._input_id()))

    # -- deprecated: removed in 0.3 (see CHANGELOG.md) ------------------------------------------

    def input_version_asset_count(self) -> int:
        """Deprecated since 0.2: use `ctx.stats().assets`."""
        deprecated("ProcessingContext.input_version_asset_count()", "ctx.stats().assets")
        return self.stats().assets

    @property
    def client(self) -> Client:
        """Deprecated since 0.2: the run's raw API client. Use the context's own methods
        (`stats()`, `iter_assets()`, `add_annotations()`, ...), which split requests to the
        server's limits and retry them safely."""
        deprecated("ProcessingContext.client", "the context's methods (ctx.stats(), "
                   "ctx.iter_assets(), ctx.add_annotations(), ...)")  # fmt: skip
        return self._client

    def iter_asset_pages(self, page_size: int = 200, **filters: Any) -> Iterator[list[Asset]]:
        """The input version's assets (metadata only), a page at a time.

        Filters as `GET /versions/{id}/assets`: `label`, `tag`, `annotated`, `human_annotated`,
        `run_annotated`.
        A resumed run (`resume`) leaves out the assets the job's earlier runs finished."""
        skip = self._finished_earlier()
        after = None
        while True:
            page = self._client.list_assets(
                self._input_id(), after=after, limit=page_size, **filters
            )
            items = [Asset.model_validate(a) for a in page["items"]]
            items = [a for a in items if a.id not in skip]
            if items:
                yield items
            after = page["next"]
            if after is None:
                return

    def _finished_earlier(self) -> frozenset[int]:
        if self._skip is None:
            self._skip = frozenset(self._client.finished_assets(self.run_id) if self.resume else ())
            if self.resume:
                self.log.info("resuming: %d assets finished by earlier runs are skipped",
                              len(self._skip))  # fmt: skip
        return self._skip

    def iter_assets(
        self,
        batch_size: int = 8,
        prefetch: int = 2,
        threads: int = 2,
        *,
        with_annotations: bool = False,
        **filters: Any,
    ) -> Iterator[list[LoadedAsset]]:
        """Batches of decoded images of the input version, `prefetch` batches ahead; with
        `with_annotations`, each with every author's annotations (fetched along, one request
        per batch).

        A batch larger than the server's `limits.max_batch_images` is fetched in several
        requests; a request the server refuses ends the run (it is not the images' fault).
        Downloads and decoding run in background threads while the caller works on earlier
        batches. An image that cannot be decoded is logged and counted as a failure (see
        `record_failure`) and left out of its batch.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        load = functools.partial(self._load_batch, with_annotations=with_annotations)
        pending: deque[tuple[list[Asset], Future[list[Any]]]] = deque()
        with ThreadPoolExecutor(
            threads, thread_name_prefix="darkroom-load", initializer=_background_priority
        ) as pool:
            group: list[Asset] = []
            for page in self.iter_asset_pages(page_size=max(batch_size * 4, 200), **filters):
                for asset in page:
                    group.append(asset)
                    if len(group) == batch_size:
                        pending.append((group, pool.submit(load, group)))
                        group = []
                        while len(pending) > prefetch:
                            yield from self._ready(*pending.popleft())
            if group:
                pending.append((group, pool.submit(load, group)))
            while pending:
                yield from self._ready(*pending.popleft())

    def _load_batch(
        self, assets: list[Asset], *, with_annotations: bool = False
    ) -> list[tuple[np.ndarray | Exception, list[StoredAnnotation] | None]]:
        """Decoded images, or the exception that stands for each one that could not be read,
        each with its annotations when asked."""
        notes = self.annotations_of(a.id for a in assets) if with_annotations else {}
        started = time.perf_counter()
        found = self._read_linked(assets)
        missing = [a.id for a in assets if a.id not in found]
        read = time.perf_counter()
        self._timed("read", read - started, len(found))
        step = self.limits.max_batch_images
        for start in range(0, len(missing), step):
            ids = missing[start : start + step]
            found.update(self._client.download_images(self._input_id(), ids))
        downloaded = time.perf_counter()
        out: list[tuple[np.ndarray | Exception, list[StoredAnnotation] | None]] = []
        for asset in assets:
            try:
                if asset.id not in found:
                    raise LookupError("not in the input version any more")
                out.append((decode_rgb(found.pop(asset.id)), notes.get(asset.id)))
            except Exception as exc:  # a bad image must not end the run by itself
                out.append((exc, None))
        self._timed("download", downloaded - read, len(missing))
        self._timed("decode", time.perf_counter() - downloaded, len(assets))
        return out

    def _read_linked(self, assets: list[Asset]) -> dict[int, bytes]:
        """The images the executor linked from a local blob store (no request, no copy through
        the server); those it did not link are downloaded."""
        found: dict[int, bytes] = {}
        if self._blobs is not None:
            for asset in assets:
                try:
                    found[asset.id] = (self._blobs / asset.blob_sha256).read_bytes()
                except OSError:
                    continue
        return found

    def _timed(self, step: str, seconds: float, items: int) -> None:
        if not items:
            return
        with self._timings_lock:
            self.timings[step] += seconds
            self.counts[step] += items

    def data_path_summary(self) -> str | None:
        """One line on where the run's data-path time went, or None if it moved nothing."""
        if not self.counts:
            return None
        parts = [
            f"{step} {self.counts[step]} in {self.timings[step]:.2f} s "
            f"({1000 * self.timings[step] / max(self.counts[step], 1):.2f} ms each)"
            for step in ("read", "download", "decode", "wait", "write", "upload")
            if self.counts[step]
        ]
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return (
            f"data path: {', '.join(parts)}; the run's CPU time so far "
            f"{usage.ru_utime + usage.ru_stime:.2f} s"
        )

    def _ready(self, assets: list[Asset], future: Future[list[Any]]) -> Iterator[list[LoadedAsset]]:
        waited = time.perf_counter()
        images = future.result()
        self._timed("wait", time.perf_counter() - waited, len(assets))
        batch = []
        for asset, (image, notes) in zip(assets, images, strict=True):
            if isinstance(image, Exception):
                self.record_failure(f"asset {asset.id} ({asset.filename})", image)
            else:
                batch.append(LoadedAsset(asset, image, notes))
        if batch:
            yield batch

    def annotations(self, asset_id: int) -> list[StoredAnnotation]:
        """Every author's annotation of an asset (people's and runs')."""
        return [StoredAnnotation.model_validate(x) for x in self._client.list_annotations(asset_id)]

    def annotations_of(self, asset_ids: Iterable[int]) -> dict[int, list[StoredAnnotation]]:
        """Every author's annotations of many input assets, in one request per
        `limits.max_annotation_items` of them: what a processing reading each image's shapes
        (augmentation) asks per batch rather than per image. Every id is a key."""
        ids = list(asset_ids)
        out: dict[int, list[StoredAnnotation]] = {i: [] for i in ids}
        step = self.limits.max_annotation_items
        for start in range(0, len(ids), step):
            chunk = ids[start : start + step]
            for x in self._client.list_version_annotations(self._input_id(), chunk):
                annotation = StoredAnnotation.model_validate(x)
                out.setdefault(annotation.asset_id, []).append(annotation)
        return out

    def record_failure(self, what: str, exc: BaseException) -> None:
        """Logs and counts a per-item failure; past `max_failures` the run fails."""
        self.failures += 1
        self.log.warning("failed on %s: %s", what, exc)
        limit = self.parameters.get("max_failures")
        if limit is not None and self.failures > limit:
            raise TooManyFailures(f"{self.failures} failures, more than max_failures={limit}")

    def model_path(self) -> Path:
        """The job's model weights on local disk.

        The executor fetches them before the run starts (into `cache`, from `DARKROOM_CACHE`,
        one file per content hash); outside a sandbox they are downloaded here when missing."""
        if self.model_version is None:
            raise RuntimeError("this job has no model version")
        path = self.cache / "models" / f"{self.model_version.weights_sha256}.onnx"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            self.log.info("downloading model weights %s", self.model_version.weights_sha256[:12])
            self._client.download_weights(self.model_version.id, path)
        return path

    # -- outputs ------------------------------------------------------------------------------

    def add_annotations(self, items: AnnotationRows, *, done: Iterable[int] = ()) -> int:
        """Adds shapes as this run's annotations; returns how many were written.

        `items`: `{"asset_id", "shapes": [{"kind", "label", "bbox" | "points", "score"}]}`
        (dicts or `AnnotationItem`s); `done`: assets this run finished without a shape, so that
        a resumed re-run skips them as it skips the items' assets. Each request (split at
        `limits.max_annotation_items`) is written all or nothing."""
        rows = [i.model_dump() if isinstance(i, AnnotationItem) else i for i in items]
        finished = list(done)
        step = self.limits.max_annotation_items
        added = 0
        while rows or finished:
            started = time.perf_counter()
            chunk, rows = rows[:step], rows[step:]
            room = step - len(chunk)
            chunk_done, finished = finished[:room], finished[room:]
            answer = self._client.add_run_annotations(self.run_id, chunk, chunk_done)
            added += int(answer["shapes_added"])
            self._timed("write", time.perf_counter() - started, len(chunk) + len(chunk_done))
        return added

    def queue_annotations(self, items: AnnotationRows, *, done: Iterable[int] = ()) -> None:
        """`add_annotations` in a background thread: returns at once, so the next batch is
        read and computed while this one is written.

        Writes keep their order; at most `QUEUED_WRITES` wait (then this call blocks). A write
        that failed raises here on the next call, or in `flush()`, which the runtime calls when
        `run` returns: a run never succeeds with a write lost. The writes queued behind a
        failed one are dropped with it (a resumed re-run does their assets again)."""
        self._raise_write_error()
        rows = [i.model_dump() if isinstance(i, AnnotationItem) else i for i in items]
        if self._writer is None:
            self._writes = queue.Queue(maxsize=QUEUED_WRITES)
            self._writer = threading.Thread(
                target=self._write_queued, name="darkroom-write", daemon=True
            )
            self._writer.start()
        self._writes.put((rows, list(done)))

    def flush(self) -> None:
        """Waits until every queued write and the last progress are stored; raises the first
        write that failed."""
        if self._writer is not None:
            self._writes.join()
        self._raise_write_error()
        self._progress.wait()

    def _write_queued(self) -> None:
        while True:
            rows, done = self._writes.get()
            try:
                if self._write_error is None:
                    self.queued_shapes += self.add_annotations(rows, done=done)
            except BaseException as exc:  # re-raised in the run's own thread
                self._write_error = exc
            finally:
                self._writes.task_done()

    def _raise_write_error(self) -> None:
        if self._write_error is not None:
            error, self._write_error = self._write_error, None
            raise error

    def clear_previous_runs_annotations(self, earlier_jobs: bool = False) -> int:
        """Deletes the annotations of this job's earlier runs: a re-run starts clean. With
        `earlier_jobs`, also those of the input version's other pre-annotation jobs (a new
        pre-annotation replaces their boxes).

        A resumed run keeps them (it completes their work) and deletes nothing."""
        if self.resume:
            return 0
        answer = self._client.clear_previous_run_annotations(self.run_id, earlier_jobs)
        return int(answer["deleted"])

    def create_output_version(
        self,
        name: str,
        *,
        description: str = "",
        copy_input: bool = True,
        asset_ids: Iterable[int] | None = None,
        tags: dict[int, list[str]] | None = None,
    ) -> Version:
        """A new version of the input's dataset, produced by this job (its lineage says so).

        `copy_input` copies the input's labels and assets with their tags and annotations, on
        the server: all of them, or only `asset_ids` (a subset the processing chose), with
        extra `tags` by input asset id (a split). Without it, the labels alone."""
        ids = None if asset_ids is None else list(asset_ids)
        created = self._client.create_run_output_version(
            self.run_id, name, description=description, copy_input=copy_input, asset_ids=ids,
            tags=tags,
        )  # fmt: skip
        return Version.model_validate(created)

    def record_evaluation(self, metrics: EvaluationMetrics) -> Evaluation:
        """Stores what this run measured of its job's model version on its input version; the
        model version's page and `GET /model-versions/{id}/evaluations` show it."""
        return Evaluation.model_validate(
            self._client.record_evaluation(self.run_id, metrics.model_dump(mode="json"))
        )

    def iter_predictions(self, page_size: int = 500) -> Iterator[Prediction]:
        """The predictions of the job's deployment made in its window, oldest first (a re-run
        reads the same ones: the window is fixed at launch)."""
        if self.deployment is None:
            raise RuntimeError("this run's job is not on a deployment")
        after = None
        while True:
            page = self._client.run_predictions(self.run_id, after=after, limit=page_size)
            for item in page["items"]:
                yield Prediction.model_validate(item)
            after = page["next"]
            if after is None:
                return

    def record_metrics(self, metrics: dict[str, Any]) -> None:
        """Stores this run's figures by name: a number (drawn over time on the deployment's
        page, by window) or a JSON structure (a histogram, counts per label). A name recorded
        again by the same run takes the new value."""
        self._client.record_run_metrics(self.run_id, metrics)

    def add_model_version(
        self,
        path: str | Path,
        *,
        name: str,
        family: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> ModelVersion:
        """Registers `path` as a new version of the model this run's job runs on (converted or
        quantized weights): checked as any upload, with the source's labels (and family unless
        given), this job as its lineage and `metadata` (a report) kept with it."""
        created = self._client.add_run_model_version(
            self.run_id, path, name=name, family=family, metadata=metadata
        )
        return ModelVersion.model_validate(created)

    def upload_images(
        self, version: Version | int, images: Iterable[tuple[str, bytes]]
    ) -> list[Asset]:
        """Adds encoded images (filename, bytes) to an output version of this job; returns
        their assets in order.

        `images` may be a generator: requests of up to `UPLOAD_CHUNK_FILES` files are sent
        from a background thread while the next ones are encoded. Each request is all or
        nothing; the first that fails raises here."""
        version_id = version if isinstance(version, int) else version.id
        files = min(UPLOAD_CHUNK_FILES, self.limits.max_upload_files)
        budget = min(self.limits.max_request_bytes // 2, UPLOAD_CHUNK_BYTES)
        pending: deque[Future[list[Asset]]] = deque()
        created: list[Asset] = []
        chunk: list[tuple[str, bytes]] = []
        size = 0
        with ThreadPoolExecutor(UPLOAD_THREADS, thread_name_prefix="darkroom-upload") as pool:
            for name, data in images:
                if chunk and (len(chunk) >= files or size + len(data) > budget):
                    pending.append(pool.submit(self._upload, version_id, chunk))
                    chunk, size = [], 0
                    while len(pending) > UPLOAD_THREADS:
                        created += pending.popleft().result()
                chunk.append((name, data))
                size += len(data)
            if chunk:
                pending.append(pool.submit(self._upload, version_id, chunk))
            while pending:
                created += pending.popleft().result()
        return created

    def _upload(self, version_id: int, chunk: list[tuple[str, bytes]]) -> list[Asset]:
        started = time.perf_counter()
        made = [Asset.model_validate(a) for a in self._client.upload_assets(version_id, chunk)]
        self._timed("upload", time.perf_counter() - started, len(chunk))
        return made

    def progress(self, done: int, total: int | None = None, *, force: bool = False) -> None:
        """Reports progress; calls closer than 0.5 s apart are coalesced unless forced.

        Sent from a background thread (the latest value only), so a busy server never holds
        the processing up; `flush()` waits for it, and an error raises on a later call."""
        now = time.monotonic()
        final = total is not None and done >= total
        if not (force or final) and now - self._last_progress < PROGRESS_INTERVAL_S:
            return
        self._last_progress = now
        self._progress.put((done, total))

    def _send_progress(self, value: tuple[int, int | None]) -> None:
        self._client.report_run_progress(self.run_id, *value)


class _LatestSender:
    """Sends values from a background thread, only the latest when several wait: the caller
    never waits for the server. A failed send raises on the next `put` or `wait`."""

    def __init__(self, send: Callable[[Any], None]) -> None:
        self._send = send
        self._cond = threading.Condition()
        self._value: Any = None
        self._busy = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def put(self, value: Any) -> None:
        with self._cond:
            self._raise()
            self._value = value
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="darkroom-progress",
                                                daemon=True)  # fmt: skip
                self._thread.start()
            self._cond.notify_all()

    def wait(self) -> None:
        """Returns once the latest value was sent."""
        with self._cond:
            while self._value is not None or self._busy:
                self._cond.wait()
            self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._value is None:
                    self._cond.wait()
                value, self._value, self._busy = self._value, None, True
            error = None
            try:
                self._send(value)
            except BaseException as exc:  # raised in the run's own thread
                error = exc
            with self._cond:
                self._busy = False
                self._error = error or self._error
                self._cond.notify_all()
