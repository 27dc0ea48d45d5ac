"""`data-augmentation`: new images made from a version's images by an albumentations pipeline,
with their shapes moved along, written into a new version in one launch.

Rectangles are moved as albumentations moves boxes (clipped to the image, dropped below
`min_visibility`); polygon vertices and keypoints as points. Every output image is seeded by
(`seed`, asset, copy), so the same input and parameters give byte-identical images whatever
the order or the re-runs. Other shapes (masks, classifications, points) are not carried over,
and the log says how many.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import time
from collections import Counter
from typing import Any

from darkroom.processings import BuiltinSpec
from darkroom.processings.augmentation_catalog import load_catalog
from darkroom.runtime import ProcessingContext

# What a standby runtime loads ahead when this processing ran last (the server does not).
PRELOAD = ("albumentations",)
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations would ask PyPI at import

PRESETS: dict[str, list[dict[str, Any]]] = {
    "light": [
        {"transform": "HorizontalFlip", "p": 0.5},
        {"transform": "RandomBrightnessContrast", "brightness_limit": 0.15,
         "contrast_limit": 0.15, "p": 0.5},
        {"transform": "Affine", "scale": [0.95, 1.05], "translate_percent": [-0.03, 0.03],
         "rotate": [-5, 5], "p": 0.5},
    ],
    "geometric": [
        {"transform": "HorizontalFlip", "p": 0.5},
        {"transform": "Affine", "scale": [0.8, 1.2], "translate_percent": [-0.1, 0.1],
         "rotate": [-15, 15], "shear": [-5, 5], "p": 1.0},
        {"transform": "Perspective", "scale": [0.02, 0.06], "p": 0.3},
    ],
    "photometric": [
        {"transform": "RandomBrightnessContrast", "p": 0.8},
        {"transform": "HueSaturationValue", "p": 0.5},
        {"transform": "GaussNoise", "p": 0.3},
        {"transform": "MotionBlur", "p": 0.2},
        {"transform": "CLAHE", "p": 0.2},
    ],
}  # fmt: skip
MAX_TRANSFORMS = 32


def _pipeline_schema() -> dict[str, Any]:
    """Each item names an albumentations transform and gives its arguments: an unknown name or
    argument is refused at launch (422), before any run starts."""
    transforms = load_catalog()["transforms"]
    return {
        "type": ["array", "null"],
        "maxItems": MAX_TRANSFORMS,
        "default": None,
        "description": 'albumentations transforms in order, e.g. [{"transform": '
        '"HorizontalFlip", "p": 0.5}]; replaces the preset',
        "items": {
            "type": "object",
            "required": ["transform"],
            "properties": {"transform": {"enum": sorted(transforms)}},
            "allOf": [_arguments_of(name, args) for name, args in sorted(transforms.items())],
        },
    }


def _arguments_of(name: str, args: list[str]) -> dict[str, Any]:
    return {
        "if": {"properties": {"transform": {"const": name}}},
        "then": {"propertyNames": {"enum": ["transform", *args]}},
    }


SPEC = BuiltinSpec(
    name="data-augmentation",
    type="data_augmentation",
    description="Makes new images from a version's images with an albumentations pipeline (a "
    "preset or your own), moves their rectangles, polygons and keypoints along, and writes "
    "them into a new version. Same seed, same images.",
    parameters_schema={
        "type": "object",
        "properties": {
            "preset": {
                "enum": sorted(PRESETS),
                "default": "light",
                "description": "used when no pipeline is given",
            },
            "pipeline": _pipeline_schema(),
            "copies_per_asset": {"type": "integer", "minimum": 1, "maximum": 50, "default": 2},
            "include_originals": {
                "type": "boolean",
                "default": True,
                "description": "copy the input's images and shapes too",
            },
            "seed": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1, "default": 0},
            "min_visibility": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "default": 0.3,
                "description": "a box keeping less of its area is dropped",
            },
            "output_version_name": {"type": ["string", "null"], "maxLength": 200, "default": None},
            "limit": {
                "type": ["integer", "null"],
                "minimum": 1,
                "default": None,
                "description": "only the first N assets (a preview)",
            },
            "jpeg_quality": {"type": "integer", "minimum": 50, "maximum": 100, "default": 90},
        },
    },
    timeout_s=6 * 3600,
)


def build_pipeline(steps: list[dict[str, Any]], min_visibility: float) -> Any:
    """An albumentations Compose of `steps` that also moves boxes and points."""
    import albumentations as A

    transforms = [getattr(A, s["transform"])(**{k: v for k, v in s.items() if k != "transform"})
                  for s in steps]  # fmt: skip
    return A.Compose(
        transforms,
        bbox_params=A.BboxParams(format="coco", label_fields=["box_ids"],
                                 min_visibility=min_visibility, clip=True),
        keypoint_params=A.KeypointParams(format="xy", label_fields=["point_ids"],
                                         remove_invisible=False),
    )  # fmt: skip


def _seed(seed: int, asset_id: int, copy: int) -> int:
    digest = hashlib.sha256(f"{seed}:{asset_id}:{copy}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def augment(pipeline: Any, image: Any, shapes: list[Any], seed: int) -> tuple[Any, list[dict]]:
    """One augmented image and its shapes (contract `Shape` dicts), from `shapes` given as
    stored shapes (`ShapeOut`). Returns the shapes that survive, in pixels of the new image.

    Albumentations treats points as pixel indices (a flip maps x to W - 1 - x) and boxes as
    edges (W - x - w); points are moved as pixel centres (x - 0.5) so that polygon vertices
    and boxes stay in one coordinate system."""
    boxes: list[list[float]] = []
    box_ids: list[int] = []
    points: list[list[float]] = []
    refs: list[tuple[int, str, int]] = []  # per point: shape, ring or keypoint, ring no. or v
    for n, s in enumerate(shapes):
        if s.kind == "rectangle" and s.bbox:
            boxes.append(list(s.bbox))
            box_ids.append(n)
        elif s.kind == "polygon" and s.points:
            for ring_no, ring in enumerate(s.rings or [s.points]):
                for p in ring:
                    points.append([p[0] - 0.5, p[1] - 0.5])
                    refs.append((n, "ring", ring_no))
        for k in s.keypoints or []:
            points.append([k[0] - 0.5, k[1] - 0.5])
            refs.append((n, "keypoint", int(k[2])))
    pipeline.set_random_seed(seed)
    out = pipeline(image=image, bboxes=boxes, box_ids=box_ids, keypoints=points,
                   point_ids=list(range(len(points))))  # fmt: skip
    height, width = out["image"].shape[:2]
    moved: dict[int, dict[str, Any]] = {}
    for box, n in zip(out["bboxes"], out["box_ids"], strict=True):
        x, y, w, h = (round(float(v), 3) for v in box)
        moved[int(n)] = {"kind": "rectangle", "label": shapes[int(n)].label, "bbox": [x, y, w, h]}
    rings: dict[int, dict[int, list[list[float]]]] = {}
    keypoints: dict[int, list[list[float]]] = {}
    for (px, py), i in zip(out["keypoints"], out["point_ids"], strict=True):
        n, what, extra = refs[int(i)]
        x, y = round(float(px) + 0.5, 3), round(float(py) + 0.5, 3)
        if what == "ring":
            rings.setdefault(n, {}).setdefault(extra, []).append([x, y])
        else:
            inside = 0 <= x <= width and 0 <= y <= height
            keypoints.setdefault(n, []).append([x, y, extra] if inside and extra else [0, 0, 0])
    for n, parts in rings.items():
        kept = [r for _, r in sorted(parts.items()) if _inside_area(r, width, height) > 0]
        if kept:
            moved[n] = {"kind": "polygon", "label": shapes[n].label, "points": kept[0],
                        "rings": kept if len(kept) > 1 else None}  # fmt: skip
    for n, kps in keypoints.items():
        if n in moved:
            moved[n]["keypoints"] = kps
    for n, s in moved.items():
        if shapes[n].attributes:
            s["attributes"] = shapes[n].attributes
    return out["image"], [moved[n] for n in sorted(moved)]


def _inside_area(ring: list[list[float]], width: int, height: int) -> float:
    """The area of the ring's bounding box inside the image: 0 when it left the image."""
    xs = [min(max(p[0], 0), width) for p in ring]
    ys = [min(max(p[1], 0), height) for p in ring]
    return (max(xs) - min(xs)) * (max(ys) - min(ys))


def run(ctx: ProcessingContext) -> None:
    import cv2

    params = ctx.parameters
    steps = params["pipeline"] or PRESETS[params["preset"]]
    pipeline = build_pipeline(steps, params["min_visibility"])
    names = ", ".join(s["transform"] for s in steps)
    ctx.log.info("pipeline: %s%s", names, "" if params["pipeline"] else f" ({params['preset']})")
    stats = ctx.stats()
    total = min(stats.assets, params["limit"] or stats.assets)
    copies = params["copies_per_asset"]
    name = params["output_version_name"] or f"{ctx.input_version.name}-augmented-{ctx.run_id}"
    description = f"{names}, {copies} per image, seed {params['seed']}"
    output = ctx.create_output_version(
        name, description=description, copy_input=params["include_originals"]
    )
    ctx.log.info("writing %d x %d images into version %s (%s)", total, copies, output.id, name)
    quality = [int(cv2.IMWRITE_JPEG_QUALITY), params["jpeg_quality"]]
    shapes_of: dict[str, list[dict]] = {}
    counts = {"boxes_in": Counter(), "boxes_out": Counter(), "not_carried": 0}
    started = time.monotonic()
    done = 0

    def encoded():  # type: ignore[no-untyped-def]
        nonlocal done
        for batch in ctx.iter_assets(batch_size=16, with_annotations=True):
            for loaded in batch:
                if done >= total:
                    return
                asset = loaded.asset
                try:
                    stored = [s for a in loaded.annotations or [] for s in a.shapes]
                    carried = [s for s in stored if s.kind in ("rectangle", "polygon")]
                    counts["not_carried"] += len(stored) - len(carried)
                    for s in carried:
                        counts["boxes_in"][s.label] += 1
                    stem, _ = posixpath.splitext(asset.filename)
                    for copy in range(copies):
                        seed = _seed(params["seed"], asset.id, copy)
                        image, shapes = augment(pipeline, loaded.image, carried, seed)
                        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                                                quality)  # fmt: skip
                        if not ok:
                            raise RuntimeError("JPEG encoding failed")
                        filename = f"{stem}.aug{copy}.jpg"
                        shapes_of[filename] = shapes
                        for s in shapes:
                            counts["boxes_out"][s["label"]] += 1
                        yield filename, jpeg.tobytes()
                except Exception as exc:  # one bad image does not end the run
                    ctx.record_failure(f"asset {asset.id} ({asset.filename})", exc)
                done += 1
                elapsed = time.monotonic() - started
                if done % 50 == 0 or done == total:
                    eta = elapsed / done * (total - done)
                    ctx.log.info("%d/%d images augmented, %.1f images/s, ETA %.0f s",
                                 done, total, done / elapsed, eta)  # fmt: skip
                ctx.progress(done, total)

    created = ctx.upload_images(output, encoded())
    ctx.add_annotations([{"asset_id": a.id, "shapes": shapes_of[a.filename]}
                         for a in created if shapes_of.get(a.filename)])  # fmt: skip
    ctx.progress(total, total, force=True)
    for label in sorted(counts["boxes_in"]):
        before, after = counts["boxes_in"][label] * copies, counts["boxes_out"][label]
        ctx.log.info("label %s: %d shapes out of %d (%d dropped: left the image or below "
                     "min_visibility)", label, after, before, before - after)  # fmt: skip
    if counts["not_carried"]:
        ctx.log.info("%d shapes not carried over (masks, points, classifications)",
                     counts["not_carried"])  # fmt: skip
    ctx.log.info("version %s (%s): %d new images from %d assets", output.id, name, len(created),
                 done)  # fmt: skip
