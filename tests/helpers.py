"""Small helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import io
import socket
import struct
import zipfile
import zlib

from PIL import Image


def image_bytes(width: int = 64, height: int = 48, fmt: str = "JPEG", seed: int = 0) -> bytes:
    img = Image.new("RGB", (width, height), ((seed * 37) % 256, (seed * 91) % 256, 128))
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` with a tiny IDAT (a pixel-bomb probe)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return out.getvalue()


def rendered_page(
    title: str = "On the Keeping of Bees", seed: int = 0
) -> tuple[bytes, tuple[int, int, int, int]]:
    """A PNG document page with a title and a paragraph, and the paragraph's box."""
    import textwrap

    from PIL import ImageDraw, ImageFont

    img = Image.new("RGB", (850, 1100), "white")
    draw = ImageDraw.Draw(img)
    draw.text((80, 60), title, fill="black", font=ImageFont.load_default(size=30))
    body = ImageFont.load_default(size=16)
    sentence = (
        "The hive is a city of wax in which every cell has its use and every worker its task, "
        "and the keeper who learns their seasons learns patience. "
    )
    text = sentence * (5 + seed)
    y = 140
    for line in textwrap.wrap(text, 88):
        draw.text((80, y), line, fill="black", font=body)
        y += 22
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue(), (80, 140, 770, y)


def version_shapes(api, version_id: int) -> dict[str, list[dict]]:  # type: ignore[no-untyped-def]
    """{asset filename: every author's shapes as the API answers them} of a version."""
    out: dict[str, list[dict]] = {}
    for asset in api.get(f"/api/v1/versions/{version_id}/assets?limit=500").json()["items"]:
        annotations = api.get(f"/api/v1/assets/{asset['id']}/annotations").json()["items"]
        out[asset["filename"]] = [s for ann in annotations for s in ann["shapes"]]
    return out
