"""Responses the API and the pages send alike: a stored blob (content-addressed, so cached for
good and revalidated by its sha256; a local store's file sent as it is, a remote one streamed),
and a version's export archive."""

from __future__ import annotations

import os
import tempfile

from fastapi import Request, Response, status
from fastapi.responses import FileResponse, StreamingResponse
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from darkroom.domain import transfer, versions
from darkroom.domain.accounts import Principal
from darkroom.domain.transfer import Format
from darkroom.storage import BlobStore

__all__ = ["IMMUTABLE", "blob_response", "export_archive"]

IMMUTABLE = "private, max-age=31536000, immutable"


def blob_response(request: Request, store: BlobStore, sha256: str, mime: str) -> Response:
    etag = f'"{sha256}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED)
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE}
    path = store.local_path(sha256)
    if path is not None:
        return FileResponse(path, media_type=mime, headers=headers)
    return StreamingResponse(store.iter_chunks(sha256), media_type=mime, headers=headers)


def export_archive(
    session: Session, store: BlobStore, principal: Principal, version_id: int, format: Format
) -> FileResponse:
    """The version exported in `format` as a zip, written to a temporary file first (removed
    once sent), named after its dataset and version."""
    version = versions.get_version(session, principal, version_id)
    fd, path = tempfile.mkstemp(suffix=".zip", prefix="darkroom-export-")
    try:
        with os.fdopen(fd, "wb") as out:
            transfer.export_version(session, store, principal, version_id, format, out)
    except BaseException:
        os.unlink(path)
        raise
    name = f"{version.dataset.name}-{version.name}-{format.value}.zip".replace("/", "_")
    return FileResponse(path, media_type="application/zip", filename=name,
                        background=BackgroundTask(os.unlink, path))  # fmt: skip
