"""Image validation: what darkroom accepts as an asset, decided from the bytes, not the name."""

from __future__ import annotations

import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO

from PIL import Image, UnidentifiedImageError

from darkroom.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

__all__ = ["MIME_BY_FORMAT", "ImageInfo", "probe_image"]

MIME_BY_FORMAT = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "GIF": "image/gif",
}
JPEG_DRAFT_SCALE = 8  # decode JPEGs at 1/8 scale: every byte is still read, 60x less work


@dataclass(frozen=True, slots=True)
class ImageInfo:
    format: str
    mime: str
    width: int
    height: int


def probe_image(
    fp: BinaryIO, filename: str, max_pixels: int, *, decoded_next: bool = False
) -> ImageInfo:
    """Checks that `fp` holds a whole, supported image no larger than `max_pixels`.

    The header gives format and size (so a 50,000 x 50,000 PNG is refused before any decoding).
    A JPEG or PNG that ends with its end marker is taken as whole without decoding it (imports
    of many images depend on this being cheap; a PNG's image data is inflated to its end, not
    decoded); any other file is decoded (JPEGs at reduced scale) to catch truncation and
    corruption. `decoded_next`: the caller decodes the image right after (a predict), so only
    the header and the end marker are checked here and corruption is the decoder's to report.
    Raises InvalidInput (empty or corrupt), UnsupportedMediaType or PayloadTooLarge, each
    naming the file. Leaves `fp` at position 0.
    """
    fp.seek(0, 2)
    if fp.tell() == 0:
        raise InvalidInput(
            f"{filename}: empty file", code="empty_file", details={"filename": filename}
        )
    fp.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(fp)
            fmt = img.format or ""
            width, height = img.size
            if fmt not in MIME_BY_FORMAT:
                raise UnsupportedMediaType(
                    f"{filename}: {fmt or 'unknown'} images are not supported "
                    f"(supported: {', '.join(sorted(MIME_BY_FORMAT))})",
                    details={"filename": filename, "format": fmt},
                )
            if width * height > max_pixels:
                raise _too_large(filename, width, height, max_pixels)
            whole = _has_end_marker(fp, fmt)
            if whole or (decoded_next and fmt not in ("JPEG", "PNG")):
                if fmt == "PNG" and not decoded_next:
                    _check_png_stream(fp)
                return ImageInfo(fmt, MIME_BY_FORMAT[fmt], width, height)
            if fmt == "JPEG":
                img.draft(
                    "RGB", (max(1, width // JPEG_DRAFT_SCALE), max(1, height // JPEG_DRAFT_SCALE))
                )
            img.load()
    except UnidentifiedImageError as exc:
        raise UnsupportedMediaType(
            f"{filename}: not an image darkroom can read", details={"filename": filename}
        ) from exc
    except Image.DecompressionBombError as exc:
        raise PayloadTooLarge(
            f"{filename}: image has more than {max_pixels} pixels",
            code="image_too_large",
            details={"filename": filename, "max_pixels": max_pixels},
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidInput(
            f"{filename}: corrupt or truncated image ({exc})",
            code="corrupt_image",
            details={"filename": filename},
        ) from exc
    finally:
        fp.seek(0)
    return ImageInfo(fmt, MIME_BY_FORMAT[fmt], width, height)


JPEG_EOI = b"\xff\xd9"
PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
PNG_READ_BYTES = 1024 * 1024


def _has_end_marker(fp: BinaryIO, fmt: str) -> bool:
    """True when the file ends with its format's end marker (EOI for JPEG, IEND for PNG)."""
    marker = {"JPEG": JPEG_EOI, "PNG": PNG_IEND}.get(fmt)
    if marker is None:
        return False
    fp.seek(-len(marker), 2)
    return fp.read(len(marker)) == marker


def _check_png_stream(fp: BinaryIO) -> None:
    """Walks a PNG's chunks (CRCs checked) and inflates its image data to the end without
    keeping it: a truncated or corrupt IDAT behind a valid IEND is caught here, in constant
    memory, instead of failing later when a thumbnail or a run decodes it."""
    fp.seek(8)
    inflate = zlib.decompressobj()
    while True:
        head = fp.read(8)
        if len(head) < 8:
            raise ValueError("PNG ends before its IEND chunk")
        length, kind = struct.unpack(">I4s", head)
        crc = zlib.crc32(kind)
        remaining = length
        while remaining:
            piece = fp.read(min(remaining, PNG_READ_BYTES))
            if not piece:
                raise ValueError(f"PNG chunk {kind!r} is truncated")
            remaining -= len(piece)
            crc = zlib.crc32(piece, crc)
            if kind == b"IDAT":
                _inflate_away(inflate, piece)
        if fp.read(4) != struct.pack(">I", crc & 0xFFFFFFFF):
            raise ValueError(f"PNG chunk {kind!r} has a bad CRC")
        if kind == b"IEND":
            break
    if not inflate.eof:
        raise ValueError("PNG image data (IDAT) is truncated")


def _inflate_away(inflate: Any, data: bytes) -> None:
    """Inflates `data`, discarding the output a megabyte at a time."""
    while data:
        try:
            inflate.decompress(data, PNG_READ_BYTES)
        except zlib.error as exc:
            raise ValueError(f"PNG image data (IDAT) is corrupt: {exc}") from exc
        data = inflate.unconsumed_tail


def _too_large(filename: str, width: int, height: int, max_pixels: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"{filename}: {width}x{height} is more than the {max_pixels} pixels allowed",
        code="image_too_large",
        details={"filename": filename, "width": width, "height": height, "max_pixels": max_pixels},
    )
