"""The albumentations transforms `data-augmentation` accepts, with their argument names.

Kept as a JSON file beside this module (`augmentations.json`) so that the processing's
parameter schema, which the server checks at launch, is known without importing albumentations
in the server (0.7 s). `python -m darkroom.processings.augmentation_catalog` writes it from the
installed albumentations; a unit test fails when the two differ.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

__all__ = ["CATALOG_PATH", "EXCLUDED", "build_catalog", "load_catalog"]

CATALOG_PATH = Path(__file__).with_name("augmentations.json")

# Transforms that cannot run on one image with its boxes and points: they need other images or
# metadata, masks, fonts, volumes, or they return a float image that is no JPEG.
EXCLUDED = frozenset({
    "CoarseDropout3D", "CropNonEmptyMaskIfExists", "CubicSymmetry", "FDA", "FromFloat",
    "HistogramMatching", "MaskDropout", "Mosaic", "Normalize", "OverlayElements",
    "PixelDistributionAdaptation", "RandomCropNearBBox", "TextImage", "ToFloat",
})  # fmt: skip


def build_catalog() -> dict[str, Any]:
    """{"albumentations": version, "transforms": {name: [argument, …]}} of the installed
    albumentations: every public image or dual (image + boxes) transform, 3D ones excepted."""
    import albumentations as A

    transforms = {}
    for name in sorted(dir(A)):
        cls = getattr(A, name)
        if (not isinstance(cls, type) or name.startswith("_") or name.endswith("3D")
                or name in EXCLUDED or cls in (A.DualTransform, A.ImageOnlyTransform)
                or not issubclass(cls, A.DualTransform | A.ImageOnlyTransform)):  # fmt: skip
            continue
        params = inspect.signature(cls.__init__).parameters.values()
        transforms[name] = sorted(
            p.name for p in params
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )  # fmt: skip
    return {"albumentations": A.__version__, "transforms": transforms}


def load_catalog() -> dict[str, Any]:
    return json.loads(CATALOG_PATH.read_text())


if __name__ == "__main__":
    CATALOG_PATH.write_text(json.dumps(build_catalog(), indent=1, sort_keys=True) + "\n")
