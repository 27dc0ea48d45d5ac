"""Format-neutral records that parsers produce and writers consume."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from darkroom.values import ShapeIn

__all__ = [
    "ExportImage",
    "LabelInfo",
    "ParsedDataset",
    "ParsedImage",
    "Skipped",
    "asset_name",
    "extent",
    "is_image",
    "numbers",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
# Folders that hold a dataset's images in the layouts of COCO, YOLO (Ultralytics, Roboflow,
# CVAT) and VOC, as archives spell them; compared lower-cased by `IMAGE_ROOTS`.
IMAGE_DIRS = ("images", "JPEGImages", "Images")
IMAGE_ROOTS = frozenset(d.lower() for d in IMAGE_DIRS)


def is_image(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


def numbers(values: Any) -> bool:
    """A JSON list of numbers only (booleans are not numbers here)."""
    return isinstance(values, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    )


def extent(rings: Sequence[Sequence[Sequence[float]]]) -> tuple[float, float, float, float]:
    """The [x, y, w, h] box around every point of a polygon's parts."""
    xs = [p[0] for ring in rings for p in ring]
    ys = [p[1] for ring in rings for p in ring]
    return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)


def asset_name(path: str) -> str:
    """The asset name of an image at `path` in an archive: the path without its first image
    folder, so that splits and sub-folders stay apart (`train/images/1.jpg` → `train/1.jpg`,
    `images/val/1.jpg` → `val/1.jpg`) and darkroom's own exports read back as they were
    written (`images/images/x.jpg` → `images/x.jpg`)."""
    parts = path.split("/")
    for i, part in enumerate(parts[:-1]):
        if part.lower() in IMAGE_ROOTS:
            return "/".join(parts[:i] + parts[i + 1 :])
    return path


@dataclass(frozen=True, slots=True)
class Skipped:
    item: str
    reason: str


@dataclass(slots=True)
class ParsedImage:
    """An image named by the annotation file. `normalized` shapes are in 0..1 (YOLO).

    `ids` are the file's own ids of the shapes (COCO annotation ids), parallel to `shapes`:
    an object listed by two files of one import (instances and keypoints) is merged by them.
    `source_id` is the file's id of the image (COCO's), kept in the asset's metadata."""

    name: str
    shapes: list[ShapeIn] = field(default_factory=list)
    normalized: bool = False
    ids: list[Any] = field(default_factory=list)
    source_id: Any = None


@dataclass(frozen=True, slots=True)
class LabelInfo:
    """What a format says of a label beyond its name (COCO categories)."""

    external_id: int | None = None
    keypoints: dict[str, Any] | None = None  # {"names": [...], "skeleton": [[1, 2], ...]}


@dataclass(slots=True)
class ParsedDataset:
    labels: list[str]
    images: list[ParsedImage]
    skipped: list[Skipped] = field(default_factory=list)
    # COCO lists its images; YOLO and VOC take every image found in the archive.
    images_listed: bool = True
    label_info: dict[str, LabelInfo] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExportImage:
    """One asset to write: its file name, size and shapes (label by name, pixels), and the
    id an import gave it (COCO's image id, kept so that results files still match)."""

    filename: str
    width: int
    height: int
    shapes: list[ShapeIn]
    source_id: int | None = None
