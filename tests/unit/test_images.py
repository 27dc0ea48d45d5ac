"""Image validation decides from the bytes: format, size, whole or truncated."""

from __future__ import annotations

import io

import pytest

from darkroom.domain.images import probe_image
from darkroom.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from tests.helpers import image_bytes, png_header_only


def probe(data: bytes, name: str = "x"):
    return probe_image(io.BytesIO(data), name, 10**8)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"])
def test_supported_formats(fmt):
    info = probe(image_bytes(40, 30, fmt))
    assert (info.format, info.width, info.height) == (fmt, 40, 30)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_files_are_corrupt(fmt):
    data = image_bytes(300, 200, fmt)
    with pytest.raises(InvalidInput) as exc:
        probe(data[: len(data) * 2 // 3], "cut")
    assert exc.value.code == "corrupt_image"
    assert "cut" in exc.value.message


def test_jpeg_with_bytes_after_its_end_marker_is_still_accepted():
    info = probe(image_bytes(50, 50) + b"\0\0 padding from a camera")
    assert info.width == 50


def test_pixel_limit_is_checked_before_decoding():
    with pytest.raises(PayloadTooLarge) as exc:
        probe_image(io.BytesIO(image_bytes(200, 100)), "p", 10_000)
    assert exc.value.details["width"] == 200
    with pytest.raises(PayloadTooLarge):
        probe(png_header_only(50_000, 50_000))


def test_not_an_image():
    with pytest.raises(UnsupportedMediaType):
        probe(b"%PDF-1.4 definitely not a picture")
    with pytest.raises(InvalidInput, match="empty"):
        probe(b"")


def test_unsupported_image_format_is_415():
    ico = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (16, 16)).save(ico, "ICO")
    with pytest.raises(UnsupportedMediaType, match="ICO images are not supported"):
        probe(ico.getvalue())


@pytest.mark.slow
def test_a_90_megapixel_png_thumbnail_stays_under_500_mb(tmp_path):
    """PNGs cannot be decoded at reduced scale: the thumbnail is taken before any copy."""
    import subprocess
    import sys

    make = f"""
import numpy as np
from PIL import Image
a = np.zeros((9000, 10000, 3), np.uint8); a[:, :, 0] = np.arange(10000) % 256
Image.fromarray(a).save({str(tmp_path / "big.png")!r}, compress_level=1)
"""
    subprocess.run([sys.executable, "-c", make], check=True)
    # VmHWM, not ru_maxrss: the latter keeps the peak of the forked pytest process across exec.
    measure = f"""
from darkroom.storage import BlobStore
from darkroom.domain.thumbnails import thumbnail
store = BlobStore({str(tmp_path / "blobs")!r})
sha = store.put(open({str(tmp_path / "big.png")!r}, "rb")).sha256
thumbnail(store, sha, 256)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print(int(hwm.split()[1]) // 1024)
"""
    out = subprocess.run([sys.executable, "-c", measure], capture_output=True, text=True,
                         check=True)  # fmt: skip
    peak_mb = int(out.stdout.split()[-1])
    assert peak_mb < 500, out.stdout
