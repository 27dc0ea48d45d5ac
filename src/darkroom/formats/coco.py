"""COCO detection JSON: `images`, `categories`, `annotations` with `bbox` [x, y, w, h] in pixels.

Polygon `segmentation`s become polygons (one per ring); RLE masks fall back to their bbox.
A `score` (COCO results files) is kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from darkroom.domain.annotations import ShapeIn
from darkroom.errors import InvalidInput
from darkroom.formats.records import ExportImage, ParsedDataset, ParsedImage, Skipped

__all__ = ["parse_coco", "write_coco"]


def _fail(message: str, loc: list[Any] | None = None) -> InvalidInput:
    return InvalidInput(f"COCO file: {message}", code="invalid_coco",
                        details={"loc": loc} if loc else None)  # fmt: skip


def _key(value: Any, loc: list[Any]) -> int | str | None:
    """An id or a reference to one: an integer or a string (COCO's are integers)."""
    if value is None or (isinstance(value, int | str) and not isinstance(value, bool)):
        return value
    where = ".".join(str(p) for p in loc)
    raise _fail(f"{where} must be an integer or a string, not {type(value).__name__}", loc)


def _numbers(values: Any) -> bool:
    return isinstance(values, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    )


def parse_coco(data: bytes) -> ParsedDataset:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(f"not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise _fail("JSON nested too deeply") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise _fail("expected an object with an 'images' list")
    categories = doc.get("categories") or []
    annotations = doc.get("annotations") or []
    if not isinstance(categories, list) or not isinstance(annotations, list):
        raise _fail("'categories' and 'annotations' must be lists")

    skipped: list[Skipped] = []
    cat_names: dict[Any, str] = {}
    for i, cat in enumerate(categories):
        if not isinstance(cat, dict) or "id" not in cat or not str(cat.get("name", "")).strip():
            skipped.append(Skipped(f"category {cat!r}"[:120], "category without id or name"))
            continue
        cat_names[_key(cat["id"], ["categories", i, "id"])] = str(cat["name"]).strip()

    images: dict[Any, ParsedImage] = {}
    for i, img in enumerate(doc["images"]):
        if not isinstance(img, dict) or "id" not in img or not img.get("file_name"):
            skipped.append(Skipped(f"image {img!r}"[:120], "image without id or file_name"))
            continue
        images[_key(img["id"], ["images", i, "id"])] = ParsedImage(str(img["file_name"]))

    for i, ann in enumerate(annotations):
        ident = f"annotation {ann.get('id', '?')}"[:120] if isinstance(ann, dict) else "annotation"
        if not isinstance(ann, dict):
            skipped.append(Skipped(ident, "not an object"))
            continue
        _key(ann.get("category_id"), ["annotations", i, "category_id"])
        image = images.get(_key(ann.get("image_id"), ["annotations", i, "image_id"]))
        if image is None:
            skipped.append(Skipped(ident, f"unknown image_id {ann.get('image_id')!r}"))
            continue
        label = cat_names.get(ann.get("category_id"))
        if label is None:
            skipped.append(Skipped(ident, f"unknown category_id {ann.get('category_id')!r}"))
            continue
        score = ann.get("score")
        seg = ann.get("segmentation")
        if isinstance(seg, list) and seg and all(isinstance(r, list) for r in seg):
            for ring in seg:
                if not _numbers(ring):
                    skipped.append(Skipped(ident, "polygon with values that are not numbers"))
                    continue
                if len(ring) < 6 or len(ring) % 2:
                    skipped.append(Skipped(ident, "polygon with fewer than 3 points"))
                    continue
                pts = [[ring[i], ring[i + 1]] for i in range(0, len(ring), 2)]
                image.shapes.append(ShapeIn("polygon", label, points=pts, score=score))
            continue
        bbox = ann.get("bbox")
        if not _numbers(bbox) or len(bbox) != 4:
            skipped.append(Skipped(ident, "no bbox [x, y, w, h] of numbers"))
            continue
        image.shapes.append(ShapeIn("rectangle", label, bbox=bbox, score=score))

    return ParsedDataset(list(dict.fromkeys(cat_names.values())), list(images.values()), skipped)


def write_coco(
    labels: list[str], images: Iterable[ExportImage], image_dir: str = "images"
) -> bytes:
    """COCO JSON for `images`; files are expected under `image_dir/` next to it."""
    cat_ids = {name: i + 1 for i, name in enumerate(labels)}
    out_images: list[dict[str, Any]] = []
    out_anns: list[dict[str, Any]] = []
    for image_id, img in enumerate(images, start=1):
        out_images.append(
            {"id": image_id, "file_name": img.filename, "width": img.width, "height": img.height}
        )
        for s in img.shapes:
            ann: dict[str, Any] = {
                "id": len(out_anns) + 1,
                "image_id": image_id,
                "category_id": cat_ids[s.label],
                "iscrowd": 0,
            }
            if s.kind == "rectangle" and s.bbox is not None:
                x, y, w, h = s.bbox
                ann.update(bbox=[x, y, w, h], area=w * h, segmentation=[])
            elif s.kind == "polygon" and s.points:
                xs = [p[0] for p in s.points]
                ys = [p[1] for p in s.points]
                bbox = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
                ann.update(
                    bbox=bbox,
                    area=_polygon_area(s.points),
                    segmentation=[[c for p in s.points for c in p]],
                )
            else:
                continue  # points and classifications have no COCO detection form
            if s.score is not None:
                ann["score"] = s.score
            out_anns.append(ann)
    doc = {
        "info": {"description": "exported by darkroom"},
        "images": out_images,
        "categories": [{"id": i, "name": n, "supercategory": ""} for n, i in cat_ids.items()],
        "annotations": out_anns,
    }
    return json.dumps(doc).encode()


def _polygon_area(points: Any) -> float:
    area = 0.0
    for (x0, y0), (x1, y1) in zip(points, [*points[1:], points[0]], strict=True):
        area += x0 * y1 - x1 * y0
    return abs(area) / 2
