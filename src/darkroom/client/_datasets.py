"""Datasets, their versions, labels, assets and annotations, and the files of other tools
they import and export."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from darkroom.client._transport import (
    JSON,
    TRANSFER_TIMEOUT_S,
    ApiError,
    Transport,
    idempotency_key,
    raise_for_error,
)

__all__ = ["DatasetsApi"]


class DatasetsApi(Transport):
    """The data a processing runs on."""

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
                headers={"Content-Type": "application/x-tar", **idempotency_key()},
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
                raise_for_error(response)
                with tmp.open("wb") as out:
                    for chunk in response.iter_bytes(1024 * 1024):
                        out.write(chunk)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        return path


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


def _tar(files: Sequence[tuple[str, bytes]]) -> bytes:
    """An uncompressed tar of in-memory files (PAX: any name length, UTF-8 names)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()
