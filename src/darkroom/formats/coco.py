"""COCO JSON: `images`, `categories`, `annotations` with `bbox` [x, y, w, h] in pixels.

What is kept: an object's polygon parts as one polygon (`rings`), RLE masks (crowd regions,
`iscrowd` kept as an attribute) as masks, keypoints (and the category's keypoint names and
skeleton), an annotation's `attributes` (CVAT writes them), category ids and image ids (written
back on export, so results files still match), and `score`. Captions and panoptic files are
refused by name: they hold no objects darkroom can keep.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
from collections.abc import Iterable
from typing import Any

from darkroom.errors import InvalidInput
from darkroom.formats.archive import SafeZip
from darkroom.formats.masks import rle_box, rle_counts
from darkroom.formats.records import (
    IMAGE_DIRS,
    ExportImage,
    LabelInfo,
    ParsedDataset,
    ParsedImage,
    Skipped,
    asset_name,
    extent,
    numbers,
)
from darkroom.values import ShapeIn

__all__ = [
    "UNSUPPORTED_TASK",
    "load",
    "parse_coco",
    "parse_coco_archive",
    "parse_document",
    "parse_results",
    "write_coco",
]

UNSUPPORTED_TASK = "unsupported_coco_task"


def _fail(message: str, loc: list[Any] | None = None, code: str = "invalid_coco") -> InvalidInput:
    return InvalidInput(f"COCO file: {message}", code=code,
                        details={"loc": loc} if loc else None)  # fmt: skip


def _key(value: Any, loc: list[Any]) -> int | str | None:
    """An id or a reference to one: an integer or a string (COCO's are integers)."""
    if value is None or (isinstance(value, int | str) and not isinstance(value, bool)):
        return value
    where = ".".join(str(p) for p in loc)
    raise _fail(f"{where} must be an integer or a string, not {type(value).__name__}", loc)


def _int_id(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _task_of(doc: Any) -> str | None:
    """The name of a COCO task darkroom does not import, when `doc` is one."""
    annotations = doc.get("annotations") if isinstance(doc, dict) else None
    if isinstance(annotations, list) and annotations and isinstance(annotations[0], dict):
        first = annotations[0]
        if "segments_info" in first:
            return "panoptic segmentation"
        if "caption" in first and "bbox" not in first and "segmentation" not in first:
            return "captions"
    return None


def load(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(f"not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise _fail("JSON nested too deeply") from exc


def parse_results(doc: list[Any]) -> tuple[list[tuple[Any, Any, ShapeIn]], list[Skipped]]:
    """A COCO results file (what `loadRes` reads: a list of detections with `image_id`,
    `category_id`, `score` and a `bbox` or a `segmentation`) as (image id, category id,
    shape); the shapes' labels are filled in by whoever knows the category ids."""
    found: list[tuple[Any, Any, ShapeIn]] = []
    skipped: list[Skipped] = []
    for i, det in enumerate(doc):
        ident = f"detection {i}"
        if not isinstance(det, dict):
            skipped.append(Skipped(ident, "not an object"))
            continue
        image_id = _key(det.get("image_id"), [i, "image_id"])
        category_id = _key(det.get("category_id"), [i, "category_id"])
        shape = _shape(det, "", ident, skipped)
        if shape is not None:
            found.append((image_id, category_id, shape))
    return found, skipped


def parse_coco(data: bytes) -> ParsedDataset:
    return parse_document(load(data))


def parse_document(doc: Any) -> ParsedDataset:
    """A COCO file already read by `load`."""
    if isinstance(doc, list):
        raise _fail(
            "a results file (a list of detections) is imported on its own, as a JSON file, "
            "into a version that has its ground truth",
            code=UNSUPPORTED_TASK,
        )
    if (task := _task_of(doc)) is not None:
        raise _fail(f"COCO {task} is not supported; darkroom imports object detection, "
                    "segmentation and keypoints files", code=UNSUPPORTED_TASK)  # fmt: skip
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise _fail("expected an object with an 'images' list")
    categories = doc.get("categories") or []
    annotations = doc.get("annotations") or []
    if not isinstance(categories, list) or not isinstance(annotations, list):
        raise _fail("'categories' and 'annotations' must be lists")

    skipped: list[Skipped] = []
    cat_names: dict[Any, str] = {}
    info: dict[str, LabelInfo] = {}
    for i, cat in enumerate(categories):
        if not isinstance(cat, dict) or "id" not in cat or not str(cat.get("name", "")).strip():
            skipped.append(Skipped(f"category {cat!r}"[:120], "category without id or name"))
            continue
        name = str(cat["name"]).strip()
        cat_names[_key(cat["id"], ["categories", i, "id"])] = name
        keypoints = None
        if isinstance(cat.get("keypoints"), list) and cat["keypoints"]:
            skeleton = cat.get("skeleton")
            keypoints = {"names": [str(k) for k in cat["keypoints"]],
                         "skeleton": skeleton if isinstance(skeleton, list) else []}  # fmt: skip
        info[name] = LabelInfo(_int_id(cat["id"]), keypoints)

    images: dict[Any, ParsedImage] = {}
    for i, img in enumerate(doc["images"]):
        if not isinstance(img, dict) or "id" not in img or not img.get("file_name"):
            skipped.append(Skipped(f"image {img!r}"[:120], "image without id or file_name"))
            continue
        key = _key(img["id"], ["images", i, "id"])
        images[key] = ParsedImage(str(img["file_name"]), source_id=_int_id(key))

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
        shape = _shape(ann, label, ident, skipped)
        if shape is not None:
            image.shapes.append(shape)
            image.ids.append(ann.get("id"))

    return ParsedDataset(list(dict.fromkeys(cat_names.values())), list(images.values()),
                         skipped, label_info=info)  # fmt: skip


def _shape(ann: dict[str, Any], label: str, ident: str, skipped: list[Skipped]) -> ShapeIn | None:
    score = ann.get("score")
    attributes = dict(ann["attributes"]) if isinstance(ann.get("attributes"), dict) else {}
    if ann.get("iscrowd") in (1, True):
        attributes["iscrowd"] = 1
    keypoints = None
    kps = ann.get("keypoints")
    if numbers(kps) and kps and len(kps) % 3 == 0:
        keypoints = [[kps[i], kps[i + 1], kps[i + 2]] for i in range(0, len(kps), 3)]
    elif kps:
        skipped.append(Skipped(ident, "keypoints are not [x, y, v, …] numbers; box kept"))
    common = {"score": score, "keypoints": keypoints, "attributes": attributes or None}
    bbox = ann.get("bbox")
    has_box = numbers(bbox) and len(bbox) == 4
    seg = ann.get("segmentation")
    if isinstance(seg, list) and seg and all(isinstance(r, list) for r in seg):
        rings = []
        for ring in seg:
            if not numbers(ring):
                skipped.append(Skipped(ident, "polygon part with values that are not numbers"))
            elif len(ring) < 6 or len(ring) % 2:
                skipped.append(Skipped(ident, "polygon part with fewer than 3 points"))
            else:
                rings.append([[ring[i], ring[i + 1]] for i in range(0, len(ring), 2)])
        if rings:
            return ShapeIn("polygon", label, points=rings[0], rings=rings, **common)
    elif isinstance(seg, dict):
        mask = {"size": seg.get("size"), "counts": seg.get("counts")}
        box = bbox if has_box else _mask_box(mask)
        if box is None:
            skipped.append(Skipped(ident, "RLE mask that is empty or unreadable, without a bbox"))
            return None
        return ShapeIn("mask", label, bbox=box, mask=mask, **common)
    if "bbox" not in ann and "segmentation" not in ann:  # an image-level label
        return ShapeIn("classification", label, **common)
    if not has_box:
        skipped.append(Skipped(ident, "no bbox [x, y, w, h] of numbers"))
        return None
    return ShapeIn("rectangle", label, bbox=bbox, **common)


def _mask_box(mask: dict[str, Any]) -> list[float] | None:
    """The box of an RLE given without one (results files), as pycocotools' `toBbox`."""
    size, counts = mask["size"], mask["counts"]
    if not (isinstance(size, list) and len(size) == 2 and isinstance(size[0], int)
            and size[0] > 0):  # fmt: skip
        return None
    try:
        runs = counts if isinstance(counts, list) else rle_counts(str(counts))
        return rle_box([int(n) for n in runs], size[0])
    except (TypeError, ValueError):
        return None


def parse_coco_archive(archive: SafeZip) -> tuple[ParsedDataset, dict[str, str]]:
    """Every COCO file of the archive, merged, with asset name → archive path of its images:
    an image several files list (instances, person_keypoints, labels) is one image, and an
    object several list (see `_merge`) one shape. Captions and panoptic files are reported as
    skipped, and so are stuff files beside object files (`_is_stuff`)."""
    json_paths = [p for p in archive.paths if p.lower().endswith(".json")]
    if not json_paths:
        raise InvalidInput("COCO archive has no .json annotation file", code="invalid_coco")
    merged = ParsedDataset([], [])
    stuff = [p for p in json_paths if _is_stuff(p)]
    if stuff and len(stuff) < len(json_paths):
        for path in stuff:
            merged.skipped.append(Skipped(path, STUFF_SKIPPED))
        json_paths = [p for p in json_paths if p not in stuff]
    files: dict[str, str] = {}
    by_name: dict[str, ParsedImage] = {}
    refused: list[InvalidInput] = []
    for path in json_paths:
        try:
            part = parse_coco(archive.read(path))
        except InvalidInput as exc:
            if exc.code != UNSUPPORTED_TASK:
                raise InvalidInput(f"{path}: {exc.message}", code=exc.code,
                                   details=exc.details) from exc  # fmt: skip
            refused.append(exc)
            merged.skipped.append(Skipped(path, exc.message.removeprefix("COCO file: ")))
            continue
        merged.labels.extend(n for n in part.labels if n not in merged.labels)
        for name, info in part.label_info.items():
            known = merged.label_info.get(name)
            merged.label_info[name] = info if known is None else LabelInfo(
                known.external_id if known.external_id is not None else info.external_id,
                known.keypoints or info.keypoints,
            )  # fmt: skip
        merged.skipped.extend(part.skipped)
        for image in part.images:
            found = _coco_image_path(archive, path, image.name)
            if found is not None:
                image.name = asset_name(found)
                files[image.name] = found
            if image.name in by_name:
                _merge(by_name[image.name], image)
            else:
                by_name[image.name] = image
                merged.images.append(image)
    if refused and len(refused) == len(json_paths):
        raise refused[0]
    return merged, files


STUFF_SKIPPED = (
    "stuff segmentation (background regions, not objects) not imported beside "
    "the object files; import it on its own to keep its regions as masks"
)


def _is_stuff(path: str) -> bool:
    """COCO's stuff segmentation files (`stuff_train2017.json`): background classes (sky,
    grass) as regions; beside the instances file they would be taken for objects."""
    return posixpath.basename(path).lower().startswith("stuff_")


def _coco_image_path(archive: SafeZip, json_path: str, file_name: str) -> str | None:
    """The archive entry of a COCO `file_name`: beside the JSON file, or in an image folder
    there or one level up, also in the folder of the file's split (`instances_val2017.json`:
    COCO's `val2017/`, mmdetection's `val/`, `images/val/`; Roboflow's `train/` holds its
    JSON), else anywhere by a unique base name."""
    name = posixpath.normpath(file_name.replace("\\", "/").lstrip("/"))
    here = posixpath.dirname(json_path)
    up = posixpath.dirname(here) if here else ""
    stem = posixpath.splitext(posixpath.basename(json_path))[0]
    split = stem.rsplit("_", 1)[-1] if "_" in stem else None
    for folder in (here, up):
        for sub in ("", *IMAGE_DIRS):
            for part in ("", split) if split else ("",):
                candidate = posixpath.normpath(posixpath.join(folder, sub, part, name))
                if candidate in archive:
                    return candidate
    return archive.find(name, *IMAGE_DIRS)


def _merge(into: ParsedImage, extra: ParsedImage) -> None:
    """Adds `extra`'s shapes to the same image's. An object both list (the same annotation id,
    label and outline: instances, stuff and person_keypoints files repeat them) is kept once,
    with the keypoints and attributes of both; any other shape is added."""
    for ident, shape in zip(extra.ids, extra.shapes, strict=True):
        n = _same_object(into, ident, shape)
        if n is None:
            into.shapes.append(shape)
            into.ids.append(ident)
            continue
        first = into.shapes[n]
        into.shapes[n] = dataclasses.replace(
            first,
            keypoints=first.keypoints or shape.keypoints,
            attributes={**(shape.attributes or {}), **(first.attributes or {})} or None,
        )
    if into.source_id is None:
        into.source_id = extra.source_id


def _same_object(image: ParsedImage, ident: Any, shape: ShapeIn) -> int | None:
    if ident is None:
        return None
    outline = _outline(shape)
    for n, (i, s) in enumerate(zip(image.ids, image.shapes, strict=True)):
        if i == ident and _outline(s) == outline:
            return n
    return None


def _outline(shape: ShapeIn) -> tuple[Any, ...]:
    return (shape.kind, shape.label, shape.bbox, shape.points, shape.rings, shape.mask)


def _ids(wanted: list[int | None]) -> list[int]:
    """`wanted` ids where each is an integer not taken before; the others numbered after the
    largest."""
    taken: set[int] = set()
    kept = []
    for w in wanted:
        ok = w is not None and w not in taken
        kept.append(w if ok else None)
        if ok:
            taken.add(w)  # type: ignore[arg-type]
    following = max(taken, default=0) + 1
    out = []
    for k in kept:
        if k is None:
            k, following = following, following + 1
        out.append(k)
    return out


def write_coco(
    labels: list[str],
    images: Iterable[ExportImage],
    image_dir: str = "images",
    info: dict[str, LabelInfo] | None = None,
    *,
    image_labels: bool = False,
) -> bytes:
    """COCO JSON for `images`; files are expected under `image_dir/` next to it. Category ids
    and image ids are the ones an import kept when they are unique, else new ones.

    Objects by default; with `image_labels`, the classifications alone, as annotations without
    a bbox (datumaro's `labels` task), which detection readers must not see."""
    info = info or {}
    images = list(images)
    cat_ids = dict(zip(labels, _ids([info.get(n, LabelInfo()).external_id for n in labels]),
                       strict=True))  # fmt: skip
    image_ids = _ids([img.source_id for img in images])
    out_images: list[dict[str, Any]] = []
    out_anns: list[dict[str, Any]] = []
    for image_id, img in zip(image_ids, images, strict=True):
        out_images.append(
            {"id": image_id, "file_name": img.filename, "width": img.width, "height": img.height}
        )
        for s in img.shapes:
            if (s.kind == "classification") != image_labels:
                continue
            ann = _annotation(s)
            if ann is None:
                continue  # points have no COCO form
            ann.update(id=len(out_anns) + 1, image_id=image_id, category_id=cat_ids[s.label])
            out_anns.append(ann)
    categories = []
    for name, cat_id in cat_ids.items():
        category: dict[str, Any] = {"id": cat_id, "name": name, "supercategory": ""}
        if (schema := info.get(name, LabelInfo()).keypoints) is not None:
            category.update(keypoints=schema["names"], skeleton=schema.get("skeleton", []))
        categories.append(category)
    doc = {
        "info": {"description": "exported by darkroom"},
        "images": out_images,
        "categories": categories,
        "annotations": out_anns,
    }
    return json.dumps(doc).encode()


def _annotation(s: ShapeIn) -> dict[str, Any] | None:
    attributes = dict(s.attributes or {})
    ann: dict[str, Any] = {"iscrowd": 1 if attributes.pop("iscrowd", 0) else 0}
    if s.kind == "rectangle" and s.bbox is not None:
        x, y, w, h = s.bbox
        ann.update(bbox=[x, y, w, h], area=w * h, segmentation=[])
    elif s.kind == "polygon" and s.points:
        rings = s.rings or [s.points]
        ann.update(
            bbox=list(extent(rings)),
            area=sum(_polygon_area(ring) for ring in rings),
            segmentation=[[c for p in ring for c in p] for ring in rings],
        )
    elif s.kind == "mask" and s.mask is not None and s.bbox is not None:
        counts = s.mask["counts"]
        runs = counts if isinstance(counts, list) else rle_counts(counts)
        ann.update(bbox=list(s.bbox), area=sum(runs[1::2]), segmentation=dict(s.mask))
    elif s.kind == "classification":
        ann.update(segmentation=[])  # COCO's image-level labels: no bbox
    else:
        return None
    if s.keypoints:
        ann["keypoints"] = [c for k in s.keypoints for c in (k[0], k[1], int(k[2]))]
        ann["num_keypoints"] = sum(1 for k in s.keypoints if k[2] > 0)
    if attributes:
        ann["attributes"] = attributes
    if s.score is not None:
        ann["score"] = s.score
    return ann


def _polygon_area(points: Any) -> float:
    area = 0.0
    for (x0, y0), (x1, y1) in zip(points, [*points[1:], points[0]], strict=True):
        area += x0 * y1 - x1 * y0
    return abs(area) / 2
