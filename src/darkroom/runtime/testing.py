"""Run a processing's `run(ctx)` in a test, without a darkroom server.

    ctx = fake_context(images={"a.png": array}, labels=["cat"], parameters={...})
    run(ctx)
    assert ctx.fake.shapes("a.png") == [...]

`fake_context` returns a real `ProcessingContext` whose HTTP client talks to `FakeServer`, an
in-memory stand-in for the endpoints a run uses: the SDK code under test is the code that runs
in production, only the server is fake. It checks what a real server would refuse (unknown
labels and kinds, assets outside the input version, writes into the input version) so that a
bug shows in the test rather than in the first real run.
"""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import numpy as np
from PIL import Image

from darkroom.client import Client
from darkroom.runtime.context import ProcessingContext
from darkroom.runtime.contract import Limits, RunContext

__all__ = ["FakeContext", "FakeServer", "fake_context"]

RUN_ID = 1
JOB_ID = 1
INPUT_VERSION_ID = 1
SHAPE_KINDS = ("rectangle", "polygon", "classification", "point")
PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0")


class FakeContext(ProcessingContext):
    """A `ProcessingContext` whose server is `fake`: read what the run did from it."""

    fake: FakeServer

    def progress(self, done: int, total: int | None = None, *, force: bool = False) -> None:
        """As a run's, but stored before it returns, for a test to read at once."""
        super().progress(done, total, force=force)
        self._progress.wait()


@dataclass
class FakeAsset:
    id: int
    version_id: int
    filename: str
    data: bytes
    width: int
    height: int
    mime: str
    tags: list[str] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id, "version_id": self.version_id, "filename": self.filename,
            "mime": self.mime,
            "width": self.width, "height": self.height, "blob_sha256": "0" * 64,
            "tags": self.tags, "metadata": {}, "created_at": _NOW,
        }  # fmt: skip


_NOW = datetime(2026, 1, 1, tzinfo=UTC).isoformat()


class FakeServer:
    """What a run wrote: `shapes_by_asset` (the run's shapes per asset id), `progress` (every
    report as (done, total)), `output_versions` and `uploads` (filename -> bytes per version),
    `finished` (asset ids written with `done` or shapes)."""

    def __init__(
        self,
        images: Mapping[str, np.ndarray | bytes],
        labels: list[str],
        existing: Mapping[str, list[dict[str, Any]]],
        limits: Limits,
    ) -> None:
        self.labels = labels
        self.limits = limits
        self.assets: dict[int, FakeAsset] = {}
        for filename, image in images.items():
            self._add_asset(INPUT_VERSION_ID, filename, _encoded(image))
        self.existing = {self.asset_id(name): shapes for name, shapes in existing.items()}
        self.shapes_by_asset: dict[int, list[dict[str, Any]]] = {}
        self.finished: set[int] = set()
        self.progress: list[tuple[int, int | None]] = []
        self.output_versions: list[dict[str, Any]] = []
        self.uploads: dict[int, dict[str, bytes]] = {}

    def asset_id(self, filename: str) -> int:
        return next(a.id for a in self.assets.values() if a.filename == filename)

    def shapes(self, filename: str) -> list[dict[str, Any]]:
        """The shapes the run wrote on the input image named `filename`."""
        return self.shapes_by_asset.get(self.asset_id(filename), [])

    def _add_asset(self, version_id: int, filename: str, data: bytes) -> FakeAsset:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            mime = Image.MIME.get(img.format or "", "application/octet-stream")
        asset = FakeAsset(len(self.assets) + 1, version_id, filename, data, width, height, mime)
        self.assets[asset.id] = asset
        return asset

    # -- the endpoints ----------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/v1")
        parts = path.strip("/").split("/")
        query = {k: v[-1] for k, v in parse_qs(request.url.query.decode()).items()}
        route = (request.method, parts[0], parts[-1] if len(parts) > 2 else "")
        try:
            answer = self._route(route, parts, query, request)
        except _Refused as exc:
            body = {"error": {"code": exc.code, "message": exc.message, "details": None}}
            return httpx.Response(exc.status, json=body)
        if isinstance(answer, bytes):
            return httpx.Response(200, content=answer)
        return httpx.Response(200, json=answer)

    def _route(
        self, route: tuple[str, str, str], parts: list[str], query: dict[str, str], request: Any
    ) -> Any:
        number = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        match route:
            case ("GET", "versions", "labels"):
                self._readable(number)
                return {"items": self._labels(), "next": None}
            case ("GET", "versions", "stats"):
                return self._stats(number)
            case ("GET", "versions", "assets"):
                return self._page(number, query)
            case ("GET", "versions", "images"):
                return self._tar(number, [int(i) for i in query["ids"].split(",") if i])
            case ("POST", "versions", "assets") | ("POST", "versions", "tar"):
                return self._upload(number, request)
            case ("GET", "assets", "annotations"):
                return {"items": self._annotations_of(number)}
            case ("GET", "versions", "annotations"):
                self._readable(number)
                ids = [int(i) for i in query["asset_ids"].split(",") if i]
                if len(ids) > self.limits.max_annotation_items:
                    raise _Refused(422, "invalid_input", "too many assets at once")
                return {"items": [a for i in ids if i in self.assets
                                  and self.assets[i].version_id == number
                                  for a in self._annotations_of(i)]}  # fmt: skip
            case ("POST", "runs", "annotations"):
                return self._annotate(json.loads(request.content))
            case ("POST", "runs", "clear-previous-annotations"):
                return {"deleted": 0}
            case ("GET", "runs", "finished-assets"):
                return []
            case ("POST", "runs", "output-version"):
                return self._output_version(json.loads(request.content))
            case ("POST", "runs", "progress"):
                body = json.loads(request.content)
                self.progress.append((body["done"], body["total"]))
                return {}
        raise _Refused(404, "not_found", f"the fake server has no {request.method} {parts}")

    def _labels(self) -> list[dict[str, Any]]:
        return [
            {"id": i + 1, "version_id": INPUT_VERSION_ID, "name": name,
             "color": PALETTE[i % len(PALETTE)], "position": i}
            for i, name in enumerate(self.labels)
        ]  # fmt: skip

    def _readable(self, version_id: int) -> None:
        if version_id != INPUT_VERSION_ID and version_id not in self.uploads:
            raise _Refused(403, "forbidden", f"this run's token cannot reach version {version_id}")

    def _stats(self, version_id: int) -> dict[str, Any]:
        self._readable(version_id)
        ids = [a.id for a in self.assets.values() if a.version_id == version_id]
        shapes = {i: self.existing.get(i, []) + self.shapes_by_asset.get(i, []) for i in ids}
        counts = {name: 0 for name in self.labels}
        for s in (s for group in shapes.values() for s in group):
            counts[s["label"]] = counts.get(s["label"], 0) + 1
        return {
            "assets": len(ids),
            "annotated_assets": sum(1 for group in shapes.values() if group),
            "shapes": sum(counts.values()),
            "labels": [
                {"label_id": x["id"], "name": x["name"], "color": x["color"],
                 "shapes": counts[x["name"]]}
                for x in self._labels()
            ],
        }  # fmt: skip

    def _page(self, version_id: int, query: dict[str, str]) -> dict[str, Any]:
        self._readable(version_id)
        after, limit = int(query.get("after", 0)), int(query.get("limit", 50))
        found = []
        for a in sorted(self.assets.values(), key=lambda a: a.id):
            if a.version_id != version_id or a.id <= after:
                continue
            people = bool(self.existing.get(a.id))
            annotated = people or bool(self.shapes_by_asset.get(a.id))
            if "human_annotated" in query and people != (query["human_annotated"] == "true"):
                continue
            by_run = bool(self.shapes_by_asset.get(a.id))
            if "run_annotated" in query and by_run != (query["run_annotated"] == "true"):
                continue
            if "annotated" in query and annotated != (query["annotated"] == "true"):
                continue
            if "tag" in query and query["tag"] not in a.tags:
                continue
            shapes = self.existing.get(a.id, []) + self.shapes_by_asset.get(a.id, [])
            if "label" in query and query["label"].lower() not in {
                s["label"].lower() for s in shapes
            }:
                continue
            found.append(a)
        page = found[:limit]
        more = len(found) > limit
        return {"items": [a.public() for a in page], "next": page[-1].id if more else None}

    def _tar(self, version_id: int, ids: list[int]) -> bytes:
        self._readable(version_id)
        if len(ids) > self.limits.max_batch_images:
            raise _Refused(
                422, "invalid_input", f"at most {self.limits.max_batch_images} assets at once"
            )
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w") as tar:
            for i in ids:
                asset = self.assets.get(i)
                if asset is None or asset.version_id != version_id:
                    continue
                info = tarfile.TarInfo(str(i))
                info.size = len(asset.data)
                tar.addfile(info, io.BytesIO(asset.data))
        return out.getvalue()

    def _annotations_of(self, asset_id: int) -> list[dict[str, Any]]:
        out = []
        for author_kind, shapes in (
            ("user", self.existing.get(asset_id)),
            ("run", self.shapes_by_asset.get(asset_id)),
        ):
            if shapes:
                out.append({
                    "id": len(out) + 1, "asset_id": asset_id, "author_kind": author_kind,
                    "author_id": 1, "status": "complete", "created_at": _NOW,
                    "updated_at": _NOW, "shapes": [self._stored(s, n) for n, s in
                                                   enumerate(shapes)],
                })  # fmt: skip
        return out

    def _stored(self, shape: dict[str, Any], n: int) -> dict[str, Any]:
        label_id = self.labels.index(shape["label"]) + 1 if shape["label"] in self.labels else 0
        return {"id": n + 1, "kind": shape["kind"], "label": shape["label"],
                "label_id": label_id, "bbox": shape.get("bbox"), "points": shape.get("points"),
                "score": shape.get("score")}  # fmt: skip

    def _annotate(self, body: dict[str, Any]) -> dict[str, int]:
        items, done = body["items"], body.get("done", [])
        if len(items) + len(done) > self.limits.max_annotation_items:
            raise _Refused(422, "invalid_input", "too many assets in one batch")
        for n, item in enumerate(items):
            asset = self.assets.get(item["asset_id"])
            if asset is None:
                raise _Refused(404, "not_found", f"asset {item['asset_id']} not found")
            for i, shape in enumerate(item["shapes"]):
                where = f"item {n} (asset {asset.id}): shape {i}"
                if shape.get("kind") not in SHAPE_KINDS:
                    raise _Refused(422, "invalid_shape", f"{where}: unknown kind")
                if shape.get("label", "").lower() not in {x.lower() for x in self.labels}:
                    raise _Refused(
                        422,
                        "invalid_shape",
                        f"{where}: the version has no label {shape['label']!r}",
                    )
        added = 0
        for item in items:
            self.shapes_by_asset.setdefault(item["asset_id"], []).extend(item["shapes"])
            added += len(item["shapes"])
        self.finished.update([i["asset_id"] for i in items] + list(done))
        return {"shapes_added": added}

    def _output_version(self, body: dict[str, Any]) -> dict[str, Any]:
        version_id = INPUT_VERSION_ID + len(self.output_versions) + 1
        version = {
            "id": version_id, "dataset_id": 1, "name": body["name"],
            "description": body.get("description", ""), "parent_version_id": INPUT_VERSION_ID,
            "produced_by_job_id": JOB_ID, "created_at": _NOW, "updated_at": _NOW,
        }  # fmt: skip
        self.output_versions.append(version)
        self.uploads[version_id] = {}
        if body.get("copy_input", True):
            wanted = body.get("asset_ids")
            tags = {int(k): v for k, v in (body.get("tags") or {}).items()}
            for asset in [a for a in self.assets.values() if a.version_id == INPUT_VERSION_ID]:
                if wanted is None or asset.id in wanted:
                    copy = self._add_asset(version_id, asset.filename, asset.data)
                    copy.tags = sorted({*asset.tags, *tags.get(asset.id, [])})
                    if asset.id in self.existing:
                        self.existing[copy.id] = list(self.existing[asset.id])
            if wanted is not None and (unknown := set(wanted) - {
                a.id for a in self.assets.values() if a.version_id == INPUT_VERSION_ID
            }):  # fmt: skip
                raise _Refused(422, "invalid_input", f"assets {sorted(unknown)} are not inputs")
        return version

    def _upload(self, version_id: int, request: httpx.Request) -> dict[str, Any]:
        if version_id not in self.uploads:
            raise _Refused(403, "forbidden", "a run writes only to its job's output versions")
        created = []
        for filename, data in _uploaded_files(request):
            if any(
                a.filename == filename for a in self.assets.values() if a.version_id == version_id
            ):
                raise _Refused(409, "conflict", f"{filename} is already in version {version_id}")
            try:
                created.append(self._add_asset(version_id, filename, data).public())
            except Exception as exc:
                raise _Refused(422, "invalid_image", f"{filename}: not an image ({exc})") from exc
            self.uploads[version_id][filename] = data
        return {"items": created}


def _uploaded_files(request: httpx.Request) -> list[tuple[str, bytes]]:
    """(name, bytes) of an upload: a tar body or a multipart form."""
    if request.headers["content-type"] == "application/x-tar":
        with tarfile.open(fileobj=io.BytesIO(request.read()), mode="r:") as tar:
            return [(m.name, tar.extractfile(m).read()) for m in tar if m.isfile()]  # type: ignore[union-attr]
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + request.read())
    return [(part.get_filename() or "upload", part.get_payload(decode=True))
            for part in message.iter_parts()]  # type: ignore[attr-defined]  # fmt: skip


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _encoded(image: np.ndarray | bytes) -> bytes:
    """PNG bytes for an array (lossless: the run decodes the very same pixels)."""
    if isinstance(image, bytes):
        return image
    out = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(out, format="PNG")
    return out.getvalue()


def fake_context(
    images: Mapping[str, np.ndarray | bytes],
    *,
    labels: list[str] | None = None,
    parameters: dict[str, Any] | None = None,
    annotations: Mapping[str, list[dict[str, Any]]] | None = None,
    model_version: dict[str, Any] | None = None,
    weights: str | Path | None = None,
    limits: Limits | None = None,
) -> FakeContext:
    """A context over `images` (filename -> H x W x 3 uint8 array, or encoded bytes).

    `labels`: the input version's label names; `parameters`: as the job's (give the defaults
    your schema would fill in); `annotations`: shapes people already drew, by filename;
    `model_version` and `weights`: a model version record (`darkroom.runtime.ModelVersion`
    fields) and its weights file, for processings that call `ctx.model_path()`.
    """
    limits = limits or Limits()
    server = FakeServer(images, labels or [], annotations or {}, limits)
    context = RunContext(
        run_id=RUN_ID, job_id=JOB_ID, attempt=1,
        processing={"id": 1, "name": "under-test", "type": "custom", "revision": 1,
                    "source": {"kind": "inline"}},
        parameters=dict(parameters or {}),
        target_version={"id": INPUT_VERSION_ID, "dataset_id": 1, "name": "v1",
                        "description": "", "parent_version_id": None,
                        "produced_by_job_id": None, "created_at": _NOW, "updated_at": _NOW},
        model_version=model_version, limits=limits,
    )  # fmt: skip
    client = Client(
        "http://darkroom.test", "fake-token", transport=httpx.MockTransport(server.handle)
    )
    ctx = FakeContext(client, context)
    ctx.fake = server
    if weights is not None:
        if model_version is None:
            raise ValueError("weights need a model_version record")
        cache = Path(tempfile.mkdtemp(prefix="darkroom-fake-cache-"))
        target = cache / "models" / f"{ctx.model_version.weights_sha256}.onnx"  # type: ignore[union-attr]
        target.parent.mkdir(parents=True)
        target.write_bytes(Path(weights).read_bytes())
        ctx.cache = cache
    return ctx
