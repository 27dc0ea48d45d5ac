"""YOLO txt: one `labels/<stem>.txt` per image, lines `class cx cy w h` normalized to 0..1
(or `class x1 y1 x2 y2 …` for polygons); class names from `data.yaml` (`names`, list or
mapping) or `classes.txt` / `obj.names`."""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from typing import Any

import numpy as np
import yaml

from darkroom import safe_yaml
from darkroom.errors import InvalidInput
from darkroom.formats.archive import SafeZip
from darkroom.formats.records import (
    IMAGE_ROOTS,
    ExportImage,
    ParsedDataset,
    ParsedImage,
    Skipped,
    asset_name,
    extent,
    is_image,
)
from darkroom.values import ShapeIn

__all__ = ["label_path_for", "parse_yolo", "write_yolo_label", "write_yolo_names"]


def _class_names(archive: SafeZip) -> tuple[list[str], tuple[int, int] | None]:
    """Class names in index order, and Ultralytics' `kpt_shape` [count, 2 or 3] for pose."""
    for path in archive.paths:
        base = posixpath.basename(path)
        if base in ("data.yaml", "data.yml", "dataset.yaml"):
            try:
                doc = safe_yaml.load(archive.read(path))
            except yaml.YAMLError as exc:
                raise InvalidInput(f"{path}: invalid YAML ({exc})", code="invalid_yolo") from exc
            names = doc.get("names") if isinstance(doc, dict) else None
            if isinstance(names, dict):
                return _names_by_index(path, names), _kpt_shape(path, doc)
            if isinstance(names, list):
                return [str(n) for n in names], _kpt_shape(path, doc)
            raise InvalidInput(f"{path}: no 'names' list or mapping", code="invalid_yolo")
    for path in archive.paths:
        if posixpath.basename(path) in ("classes.txt", "obj.names"):
            text = archive.read(path).decode("utf-8", "replace")
            return [line.strip() for line in text.splitlines() if line.strip()], None
    raise InvalidInput(
        "YOLO archive needs class names: data.yaml with 'names', or classes.txt",
        code="invalid_yolo",
    )


def _kpt_shape(path: str, doc: dict[str, Any]) -> tuple[int, int] | None:
    value = doc.get("kpt_shape")
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            or value[0] < 1 or value[1] not in (2, 3)):  # fmt: skip
        raise InvalidInput(f"{path}: kpt_shape must be [number of keypoints, 2 or 3], not "
                           f"{value!r}", code="invalid_yolo")  # fmt: skip
    return value[0], value[1]


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


LABEL_ROOTS = ("labels", "Labels", "annotations", "Annotations")
LIST_FILES = frozenset({"classes.txt", "obj.names", "train.txt", "val.txt", "valid.txt",
                        "test.txt", "readme.txt"})  # fmt: skip


def label_path_for(image_path: str) -> str:
    """`images/train/a.jpg` → `labels/train/a.txt` (the Ultralytics layout)."""
    return _label_paths(image_path, with_extension=False)[0]


def _label_paths(image_path: str, *, with_extension: bool) -> list[str]:
    """Where an image's label file may be, most likely first: its first image folder swapped
    for a labels folder, else beside it (CVAT's `obj_train_data/`). `with_extension` keeps the
    image's extension (`labels/a.png.txt`), which darkroom writes when two images of a folder
    share a stem."""
    cut = image_path if with_extension else posixpath.splitext(image_path)[0]
    parts = cut.split("/")
    found: list[str] = []
    for i, part in enumerate(parts[:-1]):
        if part.lower() in IMAGE_ROOTS:
            found = ["/".join([*parts[:i], root, *parts[i + 1 :]]) + ".txt" for root in LABEL_ROOTS]
            break
    return [*found, cut + ".txt"]


def _stem_key(image_path: str) -> str:
    return posixpath.splitext(asset_name(image_path))[0]


def parse_yolo(archive: SafeZip) -> tuple[ParsedDataset, dict[str, str]]:
    """Parses the archive; also returns asset name → archive path of each image.

    Every image becomes an asset named by `asset_name` (splits stay apart). A label file
    shared by two images (`a.jpg` and `a.png`), or that no image claims, is reported."""
    names, keypoints = _class_names(archive)
    skipped: list[Skipped] = []
    images: list[ParsedImage] = []
    files: dict[str, str] = {}
    image_paths = [p for p in archive.paths if is_image(p)]
    stems: dict[str, list[str]] = {}
    for path in image_paths:
        stems.setdefault(_stem_key(path), []).append(path)
    used: set[str] = set()
    for path in image_paths:
        image = ParsedImage(asset_name(path), normalized=True)
        if image.name in files:
            skipped.append(Skipped(path, f"another image has the same name {image.name} "
                                         f"({files[image.name]})"))  # fmt: skip
            continue
        files[image.name] = path
        images.append(image)
        candidates = _label_paths(path, with_extension=True)
        shared = stems[_stem_key(path)]
        if len(shared) == 1:
            candidates += _label_paths(path, with_extension=False)
        else:
            for other in _label_paths(path, with_extension=False):
                if other in archive and other not in used:
                    used.add(other)
                    skipped.append(Skipped(other, "label file shared by the images "
                                                  + ", ".join(shared)))  # fmt: skip
        label_path = next((c for c in candidates if c in archive), None)
        if label_path is None:
            continue  # a background image
        used.add(label_path)
        image.shapes.extend(_rows(archive, label_path, names, keypoints, skipped))
    for path in archive.paths:
        if (path.lower().endswith(".txt") and path not in used
                and posixpath.basename(path).lower() not in LIST_FILES):  # fmt: skip
            skipped.append(Skipped(path, "label file without an image of the same name"))
    return ParsedDataset(names, images, skipped, images_listed=False), files


def _rows(
    archive: SafeZip,
    label_path: str,
    names: list[str],
    keypoints: tuple[int, int] | None,
    skipped: list[Skipped],
) -> list[ShapeIn]:
    """The shapes of one label file: boxes, polygons, or boxes with keypoints (pose)."""
    shapes: list[ShapeIn] = []
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
        if keypoints is not None:
            count, dims = keypoints
            if len(coords) != 4 + count * dims:
                skipped.append(Skipped(where, f"{len(coords)} numbers; kpt_shape {[count, dims]}"
                                              f" needs {4 + count * dims}"))  # fmt: skip
                continue
            cx, cy, w, h = coords[:4]
            rest = coords[4:]
            points = [
                [rest[i], rest[i + 1], rest[i + 2] if dims == 3 else 2.0]
                for i in range(0, len(rest), dims)
            ]
            shapes.append(ShapeIn("rectangle", names[cls], bbox=[cx - w / 2, cy - h / 2, w, h],
                                  keypoints=points))  # fmt: skip
        elif len(coords) == 4:
            cx, cy, w, h = coords
            shapes.append(ShapeIn("rectangle", names[cls], bbox=[cx - w / 2, cy - h / 2, w, h]))
        elif len(coords) >= 6 and len(coords) % 2 == 0:
            pts = [[coords[i], coords[i + 1]] for i in range(0, len(coords), 2)]
            shapes.append(ShapeIn("polygon", names[cls], points=pts))
        else:
            skipped.append(Skipped(where, f"{len(coords)} coordinates (expected 4, or pairs ≥ 3)"))
    return shapes


def write_yolo_names(labels: list[str], keypoints: int = 0) -> tuple[bytes, bytes]:
    """(data.yaml, classes.txt) for `labels` in class-index order; with `keypoints`, a pose
    dataset (`kpt_shape: [keypoints, 3]`)."""
    data: dict[str, Any] = {"path": ".", "train": "images", "val": "images", "nc": len(labels),
                            "names": dict(enumerate(labels))}  # fmt: skip
    if keypoints:
        data["kpt_shape"] = [keypoints, 3]
    return yaml.safe_dump(data, sort_keys=False).encode(), ("\n".join(labels) + "\n").encode()


def write_yolo_label(image: ExportImage, class_ids: dict[str, int], keypoints: int = 0) -> bytes:
    """A row per object: boxes, and masks (COCO's crowd regions) by their box; a polygon as
    its outline, one row even when it has several parts (`joined`), as Ultralytics' own COCO
    converter writes them. In a pose dataset (`keypoints` > 0) every object is a box row with
    that many keypoints (missing ones written as 0 0 0): a pose row has no outline."""
    lines: list[str] = []
    w, h = float(image.width), float(image.height)
    for s in image.shapes:
        cls = class_ids[s.label]
        rings = (s.rings or [s.points]) if s.kind == "polygon" and s.points else []
        boxed = s.kind in ("rectangle", "mask") and s.bbox is not None
        if keypoints and (rings or boxed):
            x, y, bw, bh = s.bbox if s.bbox is not None else extent(rings)
            kps = list(s.keypoints or [])[:keypoints]
            kps += [[0.0, 0.0, 0]] * (keypoints - len(kps))
            points = "".join(f" {k[0] / w:.6f} {k[1] / h:.6f} {int(k[2])}" for k in kps)
            lines.append(_box_row(cls, x, y, bw, bh, w, h) + points)
        elif rings:
            outline = joined(rings)
            lines.append(f"{cls} " + " ".join(f"{p[0] / w:.6f} {p[1] / h:.6f}" for p in outline))
        elif boxed:
            lines.append(_box_row(cls, *s.bbox, w, h))
    return ("\n".join(lines) + "\n").encode() if lines else b""


def joined(rings: Sequence[Sequence[Sequence[float]]]) -> list[Sequence[float]]:
    """The parts of a polygon as one outline: each next part is entered from the point of the
    outline so far closest to it, walked round, and left the way it was entered (a bridge of no
    width), so that the row's extent, and a mask drawn from it, are the object's."""
    outline = [list(p) for p in rings[0]]
    for ring in rings[1:]:
        if not ring:
            continue
        a = np.asarray(outline, dtype=float)
        best = (np.inf, 0, 0)
        for j, point in enumerate(np.asarray(ring, dtype=float)):  # memory O(outline), not O(n*m)
            distances = ((a - point) ** 2).sum(axis=1)
            i = int(distances.argmin())
            if distances[i] < best[0]:
                best = (float(distances[i]), i, j)
        _, i, j = best
        part = [list(p) for p in [*ring[j:], *ring[:j], ring[j]]]
        outline = outline[: i + 1] + part + outline[i:]
    return outline


def _box_row(cls: int, x: float, y: float, bw: float, bh: float, w: float, h: float) -> str:
    return f"{cls} {(x + bw / 2) / w:.6f} {(y + bh / 2) / h:.6f} {bw / w:.6f} {bh / h:.6f}"
