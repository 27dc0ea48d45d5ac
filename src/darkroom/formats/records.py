"""Format-neutral records that parsers produce and writers consume."""

from __future__ import annotations

from dataclasses import dataclass, field

from darkroom.domain.annotations import ShapeIn

__all__ = ["ExportImage", "ParsedDataset", "ParsedImage", "Skipped"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")


@dataclass(frozen=True, slots=True)
class Skipped:
    item: str
    reason: str


@dataclass(slots=True)
class ParsedImage:
    """An image named by the annotation file. `normalized` shapes are in 0..1 (YOLO)."""

    name: str
    shapes: list[ShapeIn] = field(default_factory=list)
    normalized: bool = False


@dataclass(slots=True)
class ParsedDataset:
    labels: list[str]
    images: list[ParsedImage]
    skipped: list[Skipped] = field(default_factory=list)
    # COCO lists its images; YOLO and VOC take every image found in the archive.
    images_listed: bool = True


@dataclass(frozen=True, slots=True)
class ExportImage:
    """One asset to write: its file name, size and shapes (label by name, pixels)."""

    filename: str
    width: int
    height: int
    shapes: list[ShapeIn]
