"""Python client for the darkroom REST API; the CLI and the runtime SDK are built on it.

    from darkroom.client import Client
    with Client.from_env() as dr:
        ds = dr.create_dataset("cats")
        v = dr.create_version(ds["id"], "v1")
        dr.upload_assets(v["id"], ["cat.jpg"])

Answers are the API's JSON as dicts. Errors raise `ApiError` with the API's code and message.
`DARKROOM_URL` (default http://127.0.0.1:8000) and `DARKROOM_TOKEN` (default: the admin-token
file of the local darkroom home) configure `from_env`.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import os
import ssl
import tarfile
import tempfile
import time
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import httpx

__all__ = ["DEFAULT_URL", "ApiError", "Client"]

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_S = 60.0
TRANSFER_TIMEOUT_S = 3600.0

JSON = dict[str, Any]

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({502, 503, 504})
RETRY_FIRST_DELAY_S = 0.1
RETRY_MAX_DELAY_S = 2.0


class ApiError(Exception):
    """An error answered by the API (`status` 4xx/5xx) or a server that could not be reached."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})" if status else message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process, as httpx would make it: each one loads the CA bundle
    (about 50 ms), and an executor makes clients for every run it prepares."""
    return httpx.create_ssl_context()


def _default_token() -> str | None:
    token = os.environ.get("DARKROOM_TOKEN")
    if token:
        return token
    home = Path(os.environ.get("DARKROOM_HOME", Path.home() / ".darkroom"))
    path = home / "admin-token"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


class Client:
    """A synchronous client; use as a context manager or call `close()`."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
        socket: str | None = None,
        retry_for_s: float = 0.0,
    ) -> None:
        """`socket`: reach the server over this Unix socket instead of TCP (how a sandboxed run
        talks to it); `url` then only names the server in messages.

        `retry_for_s`: how long to keep retrying, with backoff, a request that could not reach
        the server or got 502/503/504 — only requests that are safe to repeat: GET, PUT,
        DELETE, and writes sent with an `Idempotency-Key` (the runtime's). 0: never retry."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self.retry_for_s = retry_for_s
        if socket is not None and transport is None:
            # Plain HTTP on a Unix socket: no certificates to load (70 ms of every run's start).
            transport = httpx.HTTPTransport(uds=socket, verify=False)
        self._http = httpx.Client(
            base_url=f"{self.url}/api/v1", headers=headers, timeout=timeout, transport=transport,
            verify=_tls_context() if transport is None else True,
        )  # fmt: skip

    @classmethod
    def from_env(cls, url: str | None = None, token: str | None = None) -> Client:
        return cls(url or os.environ.get("DARKROOM_URL", DEFAULT_URL), token or _default_token())

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        retryable = method in IDEMPOTENT_METHODS or "Idempotency-Key" in (
            kwargs.get("headers") or {}
        )
        deadline = time.monotonic() + (self.retry_for_s if retryable else 0.0)
        delay = RETRY_FIRST_DELAY_S
        while True:
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if time.monotonic() + delay > deadline:
                    raise ApiError(
                        0, "unreachable", f"cannot reach darkroom at {self.url}: {exc}"
                    ) from exc
                log.warning("%s %s: %s; retrying in %.1f s", method, path, exc, delay)
            else:
                give_up = time.monotonic() + delay > deadline
                if response.status_code not in RETRY_STATUSES or give_up:
                    _raise_for_error(response)
                    return response
                log.warning("%s %s: HTTP %d; retrying in %.1f s",
                            method, path, response.status_code, delay)  # fmt: skip
            time.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_DELAY_S)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        return None if response.status_code == 204 else response.json()

    def _iter(
        self, path: str, params: dict[str, Any] | None = None, limit: int = 500
    ) -> Iterator[JSON]:
        query: dict[str, Any] = {k: v for k, v in (params or {}).items() if v is not None}
        query["limit"] = limit
        while True:
            page = self._json("GET", path, params=query)
            yield from page["items"]
            if page["next"] is None:
                return
            query["after"] = page["next"]

    # -- health -----------------------------------------------------------------------------

    def health(self) -> JSON:
        return self._json("GET", "/health")

    def list_workers(self) -> list[JSON]:
        """The workers claiming runs: executor, slots, GPUs and free GPUs, last seen."""
        return list(self._json("GET", "/workers")["items"])

    # -- datasets and versions ----------------------------------------------------------------

    def list_datasets(self) -> list[JSON]:
        return list(self._iter("/datasets"))

    def create_dataset(self, name: str, description: str = "") -> JSON:
        return self._json("POST", "/datasets", json={"name": name, "description": description})

    def get_dataset(self, dataset_id: int) -> JSON:
        return self._json("GET", f"/datasets/{dataset_id}")

    def update_dataset(self, dataset_id: int, **fields: Any) -> JSON:
        return self._json("PATCH", f"/datasets/{dataset_id}", json=fields)

    def delete_dataset(self, dataset_id: int) -> None:
        self._json("DELETE", f"/datasets/{dataset_id}")

    def list_versions(self, dataset_id: int) -> list[JSON]:
        return list(self._iter(f"/datasets/{dataset_id}/versions"))

    def create_version(
        self,
        dataset_id: int,
        name: str,
        *,
        parent_version_id: int | None = None,
        description: str = "",
    ) -> JSON:
        body = {"name": name, "description": description, "parent_version_id": parent_version_id}
        return self._json("POST", f"/datasets/{dataset_id}/versions", json=body)

    def get_version(self, version_id: int) -> JSON:
        return self._json("GET", f"/versions/{version_id}")

    def update_version(self, version_id: int, **fields: Any) -> JSON:
        return self._json("PATCH", f"/versions/{version_id}", json=fields)

    def delete_version(self, version_id: int) -> None:
        self._json("DELETE", f"/versions/{version_id}")

    def version_stats(self, version_id: int) -> JSON:
        return self._json("GET", f"/versions/{version_id}/stats")

    # -- labels -----------------------------------------------------------------------------

    def list_labels(self, version_id: int) -> list[JSON]:
        return self._json("GET", f"/versions/{version_id}/labels")["items"]

    def create_label(self, version_id: int, name: str, color: str | None = None) -> JSON:
        return self._json(
            "POST", f"/versions/{version_id}/labels", json={"name": name, "color": color}
        )

    def update_label(self, label_id: int, **fields: Any) -> JSON:
        return self._json("PATCH", f"/labels/{label_id}", json=fields)

    def delete_label(self, label_id: int, *, force: bool = False) -> None:
        self._json("DELETE", f"/labels/{label_id}", params={"force": force})

    # -- assets -----------------------------------------------------------------------------

    def list_assets(
        self,
        version_id: int,
        *,
        label: str | int | None = None,
        tag: str | None = None,
        annotated: bool | None = None,
        human_annotated: bool | None = None,
        run_annotated: bool | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> JSON:
        """One page: `{"items", "next"}`; see `iter_assets` for all of them."""
        params = {
            "label": label,
            "tag": tag,
            "annotated": annotated,
            "human_annotated": human_annotated,
            "run_annotated": run_annotated,
            "after": after,
            "limit": limit,
        }
        return self._json(
            "GET",
            f"/versions/{version_id}/assets",
            params={k: v for k, v in params.items() if v is not None},
        )

    def iter_assets(self, version_id: int, **filters: Any) -> Iterator[JSON]:
        return self._iter(f"/versions/{version_id}/assets", filters)

    def upload_assets(
        self, version_id: int, files: Sequence[str | Path | tuple[str, bytes | BinaryIO]]
    ) -> list[JSON]:
        """Uploads images (paths, or (filename, bytes or file) pairs) in one request.

        Only bytes can be sent twice, so only an upload of bytes alone is retried; it goes as a
        tar body, which the server reads at a fraction of a multipart form's cost per file."""
        if files and all(isinstance(i, tuple) and isinstance(i[1], bytes) for i in files):
            return self._json(
                "POST", f"/versions/{version_id}/assets/tar", content=_tar(files),  # type: ignore[arg-type]
                headers={"Content-Type": "application/x-tar", **_idempotent()},
                timeout=TRANSFER_TIMEOUT_S,
            )["items"]  # fmt: skip
        parts: list[tuple[str, tuple[str, Any]]] = []
        opened: list[BinaryIO] = []
        try:
            for item in files:
                if isinstance(item, tuple):
                    parts.append(("files", item))
                else:
                    fh = open(item, "rb")  # noqa: SIM115 - closed below
                    opened.append(fh)
                    parts.append(("files", (Path(item).name, fh)))
            return self._json(
                "POST", f"/versions/{version_id}/assets", files=parts, timeout=TRANSFER_TIMEOUT_S
            )["items"]
        finally:
            for fh in opened:
                fh.close()

    def get_asset(self, asset_id: int) -> JSON:
        return self._json("GET", f"/assets/{asset_id}")

    def update_asset(self, asset_id: int, **fields: Any) -> JSON:
        return self._json("PATCH", f"/assets/{asset_id}", json=fields)

    def delete_asset(self, asset_id: int) -> None:
        self._json("DELETE", f"/assets/{asset_id}")

    def download_image(self, asset_id: int) -> bytes:
        return self._send("GET", f"/assets/{asset_id}/image").content

    def download_images(self, version_id: int, asset_ids: list[int]) -> dict[int, bytes]:
        """Many images of a version in one request (at most 64): asset id -> bytes; ids not in
        the version are absent."""
        ids = ",".join(str(i) for i in asset_ids)
        response = self._send("GET", f"/versions/{version_id}/images", params={"ids": ids})
        return _untar(response.content)

    def thumbnail(self, asset_id: int, size: int = 256) -> bytes:
        return self._send("GET", f"/assets/{asset_id}/thumbnail", params={"size": size}).content

    # -- annotations ------------------------------------------------------------------------

    def list_annotations(self, asset_id: int) -> list[JSON]:
        return self._json("GET", f"/assets/{asset_id}/annotations")["items"]

    def list_version_annotations(self, version_id: int, asset_ids: Sequence[int]) -> list[JSON]:
        """Every author's annotations of these assets of the version (at most 1000 ids)."""
        ids = ",".join(str(i) for i in asset_ids)
        return self._json("GET", f"/versions/{version_id}/annotations",
                          params={"asset_ids": ids})["items"]  # fmt: skip

    def add_annotations(self, asset_id: int, shapes: list[JSON]) -> JSON:
        return self._json("POST", f"/assets/{asset_id}/annotations", json={"shapes": shapes})

    def replace_annotations(self, asset_id: int, shapes: list[JSON]) -> JSON:
        return self._json("PUT", f"/assets/{asset_id}/annotations", json={"shapes": shapes})

    # -- import / export --------------------------------------------------------------------

    def import_file(
        self, version_id: int, fmt: str, path: str | Path, on_existing: str = "replace"
    ) -> JSON:
        """Imports a zip (images + annotations) or a COCO JSON; answers the import report.

        `on_existing`: for images the version already has, `replace` your shapes on them (a
        re-import changes nothing), `add` beside them, or `skip` those already annotated."""
        path = Path(path)
        mime = "application/json" if path.suffix.lower() == ".json" else "application/zip"
        with path.open("rb") as fh:
            return self._json(
                "POST",
                f"/versions/{version_id}/import",
                params={"format": fmt, "on_existing": on_existing},
                files={"file": (path.name, fh, mime)},
                timeout=TRANSFER_TIMEOUT_S,
            )

    def export_to(self, version_id: int, fmt: str, path: str | Path) -> Path:
        """Writes the version's export zip to `path` as it streams in."""
        path = Path(path)
        tmp = path.with_name(path.name + ".part")
        try:
            with self._http.stream(
                "GET",
                f"/versions/{version_id}/export",
                params={"format": fmt},
                timeout=TRANSFER_TIMEOUT_S,
            ) as response:
                _raise_for_error(response)
                with tmp.open("wb") as out:
                    for chunk in response.iter_bytes(1024 * 1024):
                        out.write(chunk)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    # -- models -------------------------------------------------------------------------------

    def list_models(self) -> list[JSON]:
        return list(self._iter("/models"))

    def create_model(self, name: str, description: str = "") -> JSON:
        return self._json("POST", "/models", json={"name": name, "description": description})

    def get_model(self, model_id: int) -> JSON:
        return self._json("GET", f"/models/{model_id}")

    def list_model_versions(self, model_id: int) -> list[JSON]:
        return self._json("GET", f"/models/{model_id}/versions")["items"]

    def upload_model_version(
        self,
        model_id: int,
        path: str | Path,
        *,
        name: str = "v1",
        family: str | None = None,
        labels: list[str] | None = None,
        label_map: str | Path | None = None,
    ) -> JSON:
        """Uploads ONNX weights, a TF-OD frozen graph, or a TF-OD SavedModel (its folder, zipped
        here, or the zip); labels, family and input size default to what the file says (a
        TensorFlow model needs `labels` or a `label_map` .pbtxt file)."""
        form = {"name": name}
        if family:
            form["family"] = family
        if labels:
            form["labels"] = json.dumps(labels)
        path = Path(path)
        with contextlib.ExitStack() as stack:
            if path.is_dir():
                weights: BinaryIO = stack.enter_context(tempfile.TemporaryFile())
                zip_folder(path, weights)
                filename = f"{path.name}.zip"
            else:
                weights, filename = stack.enter_context(path.open("rb")), path.name
            files = {"file": (filename, weights, "application/octet-stream")}
            if label_map is not None:
                text = stack.enter_context(Path(label_map).open("rb"))
                files["label_map"] = (Path(label_map).name, text, "text/plain")
            return self._json(
                "POST",
                f"/models/{model_id}/versions",
                data=form,
                files=files,
                timeout=TRANSFER_TIMEOUT_S,
            )

    def get_model_version(self, version_id: int) -> JSON:
        return self._json("GET", f"/model-versions/{version_id}")

    def download_weights(self, version_id: int, target: str | Path) -> Path:
        """Streams a model version's weights into `target` (written whole, then renamed)."""
        target = Path(target)
        tmp = target.with_name(target.name + ".part")
        try:
            with self._http.stream(
                "GET", f"/model-versions/{version_id}/weights", timeout=TRANSFER_TIMEOUT_S
            ) as response:
                _raise_for_error(response)
                with tmp.open("wb") as out:
                    for chunk in response.iter_bytes(1024 * 1024):
                        out.write(chunk)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
        return target

    # -- processings --------------------------------------------------------------------------

    def list_processings(self) -> list[JSON]:
        return list(self._iter("/processings"))

    def get_processing(self, ident: int | str) -> JSON:
        return self._json("GET", f"/processings/{ident}")

    def create_processing(self, **fields: Any) -> JSON:
        """Fields as `POST /processings`: name, type, source, parameters_schema, timeout_s, …"""
        return self._json("POST", "/processings", json=fields)

    def update_processing(self, ident: int | str, **fields: Any) -> JSON:
        return self._json("PATCH", f"/processings/{ident}", json=fields)

    def list_revisions(self, ident: int | str) -> list[JSON]:
        return self._json("GET", f"/processings/{ident}/revisions")["items"]

    def push_bundle(self, archive: bytes, *, dev: bool = False) -> JSON:
        """Uploads a bundle archive: `{"processing", "revision", "created"}`."""
        return self._json(
            "POST", "/processings/push", files={"bundle": ("bundle.tar.gz", archive)},
            data={"dev": "true" if dev else "false"},
        )  # fmt: skip

    def download_run_bundle(self, run_id: int) -> bytes:
        return self._send("GET", f"/runs/{run_id}/bundle").content

    # -- jobs and runs ------------------------------------------------------------------------

    def launch_job(
        self,
        processing: int | str,
        target_version_id: int | None,
        *,
        model_version_id: int | None = None,
        parameters: dict[str, Any] | None = None,
        revision: int | None = None,
        target_deployment_id: int | str | None = None,
        window: tuple[str | None, str | None] | None = None,
    ) -> JSON:
        """`window`: (start, end) ISO times of the predictions a job on a deployment reads."""
        body = {
            "processing": processing,
            "target_version_id": target_version_id,
            "model_version_id": model_version_id,
            "parameters": parameters,
            "revision": revision,
        }
        if target_deployment_id is not None:
            body["target_deployment_id"] = target_deployment_id
        if window is not None:
            body["window_start"], body["window_end"] = window
        return self._json("POST", "/jobs", json=body)

    def list_jobs(self, **filters: Any) -> list[JSON]:
        """All jobs, oldest first; filters `version_id`, `model_version_id`, `status`,
        `processing`."""
        return list(self._iter("/jobs", filters))

    def get_job(self, job_id: int) -> JSON:
        return self._json("GET", f"/jobs/{job_id}")

    def rerun_job(
        self, job_id: int, parameters: dict[str, Any] | None = None, *, resume: bool = False
    ) -> JSON:
        """The job's next run; `resume` skips the assets its earlier runs finished."""
        body: JSON = {"parameters": parameters} if parameters is not None else {}
        if resume:
            body["resume"] = True
        return self._json("POST", f"/jobs/{job_id}/rerun", json=body)

    def get_run(self, run_id: int) -> JSON:
        return self._json("GET", f"/runs/{run_id}")

    def cancel_run(self, run_id: int) -> JSON:
        return self._json("POST", f"/runs/{run_id}/cancel")

    def run_logs(self, run_id: int, after: int = 0, limit: int = 1000) -> JSON:
        """One page of log lines after seq `after`: `{"items", "next"}`."""
        return self._json("GET", f"/runs/{run_id}/logs", params={"after": after, "limit": limit})

    def follow_logs(self, run_id: int, after: int = 0) -> Iterator[tuple[str, JSON]]:
        """Streams `("log", line)` events as they land, then one `("end", run)`.

        Reconnects after a dropped connection and resumes after the last line received.
        """
        while True:
            try:
                with self._http.stream(
                    "GET",
                    f"/runs/{run_id}/logs/stream",
                    headers={"Last-Event-ID": str(after), "Accept": "text/event-stream"},
                    timeout=httpx.Timeout(DEFAULT_TIMEOUT_S, read=None),
                ) as response:
                    _raise_for_error(response)
                    for event, data in _sse_events(response.iter_lines()):
                        payload = json.loads(data)
                        if event == "log":
                            after = payload["seq"]
                        yield event, payload
                        if event == "end":
                            return
            except (httpx.RemoteProtocolError, httpx.ReadError):
                continue  # the server dropped us: reconnect after `after`

    # -- runtime (with a run token) -----------------------------------------------------------
    # Writes carry an Idempotency-Key, so that a retry after a lost answer does not repeat them.

    def run_context(self, run_id: int) -> JSON:
        return self._json("GET", f"/runs/{run_id}/context")

    def ship_run_output(self, run_id: int, lines: Sequence[tuple[str, str, str]]) -> JSON:
        """(ISO time, stream, text) lines into the run's log: a node running it remotely."""
        body = {"lines": [{"ts": ts, "stream": stream, "text": text} for ts, stream, text in lines]}
        return self._json("POST", f"/runs/{run_id}/output", json=body, headers=_idempotent())

    def report_run_progress(self, run_id: int, done: int, total: int | None) -> JSON:
        return self._json(
            "POST", f"/runs/{run_id}/progress", json={"done": done, "total": total},
            headers=_idempotent(),
        )  # fmt: skip

    def add_run_annotations(self, run_id: int, items: list[JSON], done: Sequence[int] = ()) -> JSON:
        """Shapes on many assets (`{"asset_id", "shapes"}` items) in one transaction; `done`:
        assets finished without shapes."""
        return self._json(
            "POST", f"/runs/{run_id}/annotations", json={"items": items, "done": list(done)},
            headers=_idempotent(),
        )  # fmt: skip

    def clear_previous_run_annotations(self, run_id: int, earlier_jobs: bool = False) -> JSON:
        return self._json(
            "POST",
            f"/runs/{run_id}/clear-previous-annotations",
            headers=_idempotent(),
            params={"earlier_jobs": "true"} if earlier_jobs else None,
        )

    def finished_assets(self, run_id: int) -> list[int]:
        """Asset ids the earlier runs of the run's job finished."""
        return self._json("GET", f"/runs/{run_id}/finished-assets")

    def record_evaluation(self, run_id: int, metrics: JSON) -> JSON:
        """Stores what a model-evaluation run measured (its job's model on its version)."""
        return self._json("POST", f"/runs/{run_id}/evaluation", json=metrics, headers=_idempotent())

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
                headers=_idempotent(), timeout=TRANSFER_TIMEOUT_S,
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
            "POST", f"/runs/{run_id}/output-version", json=body, headers=_idempotent()
        )

    def run_predictions(self, run_id: int, after: int | None = None, limit: int = 500) -> JSON:
        """A page, oldest first, of the predictions a run on a deployment reads: its job's
        deployment, within its job's window."""
        params = {"limit": limit, **({"after": after} if after is not None else {})}
        return self._json("GET", f"/runs/{run_id}/predictions", params=params)

    def record_run_metrics(self, run_id: int, metrics: JSON) -> JSON:
        """Stores a run's figures: numbers, or structures (histograms, counts) by name."""
        return self._json(
            "POST", f"/runs/{run_id}/metrics", json={"metrics": metrics}, headers=_idempotent()
        )

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


def _untar(data: bytes) -> dict[int, bytes]:
    """Members of the server's plain ustar stream (regular files named by asset id): the
    headers are read in place, each member is one slice of the response."""
    out: dict[int, bytes] = {}
    view = memoryview(data)
    offset = 0
    while offset + tarfile.BLOCKSIZE <= len(data):
        header = view[offset : offset + tarfile.BLOCKSIZE]
        if not any(header):
            break  # the end blocks
        info = tarfile.TarInfo.frombuf(bytes(header), tarfile.ENCODING, "surrogateescape")
        start = offset + tarfile.BLOCKSIZE
        if start + info.size > len(data):
            raise ApiError(0, "truncated", "the image batch ended in the middle of an image")
        if info.isfile():
            out[int(info.name)] = bytes(view[start : start + info.size])
        offset = start + info.size + (-info.size % tarfile.BLOCKSIZE)
    return out


def zip_folder(folder: Path, out: BinaryIO) -> None:
    """`folder` as a zip under its own name (a SavedModel folder travels so), rewound."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
    out.seek(0)


def _tar(files: Sequence[tuple[str, bytes]]) -> bytes:
    """An uncompressed tar of in-memory files (PAX: any name length, UTF-8 names)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _idempotent() -> dict[str, str]:
    """A fresh key per logical write; `_send` reuses it for that write's retries."""
    return {"Idempotency-Key": uuid.uuid4().hex}


def _raise_for_error(response: httpx.Response) -> None:
    """Raises the API's error envelope as ApiError (reads a streamed body first)."""
    if not response.is_error:
        return
    response.read()
    try:
        err = response.json()["error"]
        raise ApiError(response.status_code, err["code"], err["message"], err.get("details"))
    except (ValueError, KeyError, TypeError):
        raise ApiError(
            response.status_code, "http_error", response.text[:500] or response.reason_phrase
        ) from None


def _sse_events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event, data) pairs of a text/event-stream; comments and pings are skipped."""
    event, data = "message", []
    for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
