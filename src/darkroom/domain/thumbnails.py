"""Thumbnails: JPEGs no larger than `size` on their long side, cached per blob and size."""

from __future__ import annotations

import io
import threading

from PIL import Image, ImageOps

from darkroom.storage import BlobStore

__all__ = ["ALLOWED_SIZES", "thumbnail"]

ALLOWED_SIZES = (64, 128, 256, 512)
JPEG_QUALITY = 85
# Past this many pixels an image that cannot be decoded at reduced scale (PNG, WebP, …) takes
# hundreds of MB while it is decoded: such images are thumbnailed one at a time.
LARGE_PIXELS = 16_000_000
_large_decode = threading.Lock()


def thumbnail(store: BlobStore, sha256: str, size: int) -> bytes:
    """The thumbnail of blob `sha256`, built and cached on first request."""
    name = f"thumbs/{size}/{sha256[:2]}/{sha256}.jpg"
    cached = store.read_derived(name)
    if cached is not None:
        return cached
    with store.open(sha256) as fh, Image.open(fh) as img:
        img.draft("RGB", (size, size))  # JPEG: decoded at 1/2..1/8 scale
        if img.width * img.height > LARGE_PIXELS:
            with _large_decode:
                small = _reduced(img, size)
        else:
            small = _reduced(img, size)
    out = io.BytesIO()
    small.save(out, "JPEG", quality=JPEG_QUALITY)
    data = out.getvalue()
    store.write_derived(name, data)
    return data


def _reduced(img: Image.Image, size: int) -> Image.Image:
    """Shrunk first, then turned upright and converted: only the small copy is ever copied."""
    exif_orientation = img.getexif().get(0x0112)
    img.thumbnail((size, size))
    small = img.convert("RGB") if img.mode != "RGB" else img.copy()
    if exif_orientation:
        small.getexif()[0x0112] = exif_orientation
        small = ImageOps.exif_transpose(small)
    return small
