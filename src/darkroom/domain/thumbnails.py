"""Thumbnails: JPEGs no larger than `size` on their long side, cached per blob and size."""

from __future__ import annotations

import io

from PIL import Image, ImageOps

from darkroom.storage import BlobStore

__all__ = ["ALLOWED_SIZES", "thumbnail"]

ALLOWED_SIZES = (64, 128, 256, 512)
JPEG_QUALITY = 85


def thumbnail(store: BlobStore, sha256: str, size: int) -> bytes:
    """The thumbnail of blob `sha256`, built and cached on first request."""
    name = f"thumbs/{size}/{sha256[:2]}/{sha256}.jpg"
    cached = store.read_derived(name)
    if cached is not None:
        return cached
    with store.open(sha256) as fh, Image.open(fh) as img:
        img.draft("RGB", (size, size))
        img = ImageOps.exif_transpose(img)
        img.thumbnail((size, size))
        out = io.BytesIO()
        img.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY)
    data = out.getvalue()
    store.write_derived(name, data)
    return data
