"""A stored blob as an HTTP response: content-addressed, so cached for good and revalidated by
its sha256; a local store's file is sent as it is, a remote one streamed."""

from __future__ import annotations

from fastapi import Request, Response, status
from fastapi.responses import FileResponse, StreamingResponse

from darkroom.storage import BlobStore

__all__ = ["IMMUTABLE", "blob_response"]

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
