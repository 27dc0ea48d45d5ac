"""YOLO txt: one `labels/<stem>.txt` per image, lines `class cx cy w h` normalized to 0..1
(or `class x1 y1 x2 y2 …` for polygons); class names from `data.yaml` (`names`, list or
mapping) or `classes.txt` / `obj.names`."""

from __future__ import annotations

import posixpath
from typing import Any

import yaml

from darkroom import safe_yaml
from darkroom.domain.annotations import ShapeIn
from darkroom.errors import InvalidInput
from darkroom.formats.archive import SafeZip
from darkroom.formats.records import (
    IMAGE_EXTENSIONS,
    ExportImage,
    ParsedDataset,
    ParsedImage,
    Skipped,
)

__all__ = ["label_path_for", "parse_yolo", "write_yolo_label", "write_yolo_names"]


def _class_names(archive: SafeZip) -> list[str]:
    for path in archive.paths:
        base = posixpath.basename(path)
        if base in ("data.yaml", "data.yml", "dataset.yaml"):
            try:
                doc = safe_yaml.load(archive.read(path))
            except yaml.YAMLError as exc:
                raise InvalidInput(f"{path}: invalid YAML ({exc})", code="invalid_yolo") from exc
            names = doc.get("names") if isinstance(doc, dict) else None
            if isinstance(names, dict):
                return _names_by_index(path, names)
            if isinstance(names, list):
                return [str(n) for n in names]
            raise InvalidInput(f"{path}: no 'names' list or mapping", code="invalid_yolo")
    for path in archive.paths:
        if posixpath.basename(path) in ("classes.txt", "obj.names"):
            text = archive.read(path).decode("utf-8", "replace")
            return [line.strip() for line in text.splitlines() if line.strip()]
    raise InvalidInput(
        "YOLO archive needs class names: data.yaml with 'names', or classes.txt",
        code="invalid_yolo",
    )


def _names_by_index(path: str, names: dict[Any, Any]) -> list[str]:
    """Ultralytics' `names: {0: person, 1: car}`, in class-index order; keys must be the
    indices 0..N-1 (as integers or digit strings)."""
    try:
        indexed = {int(k): str(v) for k, v in names.items() if not isinstance(k, bool | float)}
    except (TypeError, ValueError):
        indexed = {}
    if len(indexed) != len(names) or sorted(indexed) != list(range(len(names))):
        raise InvalidInput(
            f"{path}: 'names' as a mapping must have the class indices 0..{len(names) - 1} as "
            f"keys, not {sorted(map(str, names))[:5]}",
            code="invalid_yolo", details={"loc": [path, "names"]},
        )  # fmt: skip
    return [indexed[i] for i in range(len(names))]


def label_path_for(image_path: str) -> str:
    """`images/train/a.jpg` → `labels/train/a.txt` (the Ultralytics layout)."""
    stem = posixpath.splitext(image_path)[0] + ".txt"
    parts = stem.split("/")
    if "images" in parts:
        i = len(parts) - 1 - parts[::-1].index("images")
        parts[i] = "labels"
        return "/".join(parts)
    return stem


def _image_name(path: str) -> str:
    """The asset name: the path below the `images/` folder when there is one."""
    parts = path.split("/")
    if "images" in parts[:-1]:
        i = len(parts) - 1 - parts[::-1].index("images")
        return "/".join(parts[i + 1 :])
    return path


def parse_yolo(archive: SafeZip) -> tuple[ParsedDataset, dict[str, str]]:
    """Parses the archive; also returns asset name → archive path of each image."""
    names = _class_names(archive)
    skipped: list[Skipped] = []
    images: list[ParsedImage] = []
    files: dict[str, str] = {}
    for path in archive.paths:
        if not path.lower().endswith(IMAGE_EXTENSIONS):
            continue
        image = ParsedImage(_image_name(path), normalized=True)
        files[image.name] = path
        images.append(image)
        label_path = label_path_for(path)
        if label_path not in archive:
            alt = posixpath.splitext(path)[0] + ".txt"
            if alt not in archive:
                continue
            label_path = alt
        text = archive.read(label_path).decode("utf-8", "replace")
        for n, line in enumerate(text.splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            where = f"{label_path}:{n}"
            try:
                cls = int(fields[0])
                coords = [float(v) for v in fields[1:]]
            except ValueError:
                skipped.append(Skipped(where, "not numbers"))
                continue
            if not 0 <= cls < len(names):
                skipped.append(Skipped(where, f"class {cls} has no name ({len(names)} classes)"))
                continue
            if len(coords) == 4:
                cx, cy, w, h = coords
                image.shapes.append(
                    ShapeIn("rectangle", names[cls], bbox=[cx - w / 2, cy - h / 2, w, h])
                )
            elif len(coords) >= 6 and len(coords) % 2 == 0:
                pts = [[coords[i], coords[i + 1]] for i in range(0, len(coords), 2)]
                image.shapes.append(ShapeIn("polygon", names[cls], points=pts))
            else:
                skipped.append(
                    Skipped(where, f"{len(coords)} coordinates (expected 4, or pairs ≥ 3)")
                )
    return ParsedDataset(names, images, skipped, images_listed=False), files


def write_yolo_names(labels: list[str]) -> tuple[bytes, bytes]:
    """(data.yaml, classes.txt) for `labels` in class-index order."""
    data = {"path": ".", "train": "images", "val": "images", "nc": len(labels),
            "names": dict(enumerate(labels))}  # fmt: skip
    return yaml.safe_dump(data, sort_keys=False).encode(), ("\n".join(labels) + "\n").encode()


def write_yolo_label(image: ExportImage, class_ids: dict[str, int]) -> bytes:
    lines: list[str] = []
    w, h = float(image.width), float(image.height)
    for s in image.shapes:
        cls = class_ids[s.label]
        if s.kind == "rectangle" and s.bbox is not None:
            x, y, bw, bh = s.bbox
            lines.append(
                f"{cls} {(x + bw / 2) / w:.6f} {(y + bh / 2) / h:.6f} {bw / w:.6f} {bh / h:.6f}"
            )
        elif s.kind == "polygon" and s.points:
            coords = " ".join(f"{p[0] / w:.6f} {p[1] / h:.6f}" for p in s.points)
            lines.append(f"{cls} {coords}")
    return ("\n".join(lines) + "\n").encode() if lines else b""
