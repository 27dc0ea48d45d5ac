"""model-evaluation: how good a detection model version (YOLO or TensorFlow OD) is on a dataset
version people annotated.

The model runs on every image of the version (as the pre-annotation processings would, with a low
confidence threshold so that the precision-recall curve is complete); its boxes are compared
with the ground truth — the boxes and polygons (as their bounding boxes) of annotations
authored by people — by faster-coco-eval, which gives pycocotools' COCOeval figures (the
reference implementation of COCO's metrics) to 1e-6, 6.8x faster
(`benchmarks/coco_eval_backends.py`).
Only labels the model maps to (equal names, or `label_mapping`) are measured. The result is
recorded on the model version (`GET /model-versions/{id}/evaluations`, its page in the UI), and
COCOeval's own summary is in the run's log.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from darkroom.inference.defaults import IOU_THRESHOLD, LABEL_MAPPING_SCHEMA, THREADS_SCHEMA
from darkroom.inference.labels import map_labels
from darkroom.processings import BuiltinSpec
from darkroom.processings.detection import DETECTION_PRELOAD, load_predictor
from darkroom.runtime import Confusion, EvaluationMetrics, LabelMetrics, ProcessingContext

# What a standby runtime loads ahead when this processing ran last (the server does not).
PRELOAD = (*DETECTION_PRELOAD, "faster_coco_eval")

MAX_DETECTIONS = 100  # COCO's own limit per image for mAP and recall
GROUND_TRUTH_KINDS = ("rectangle", "polygon")

SPEC = BuiltinSpec(
    name="model-evaluation",
    type="model_evaluation",
    description="Measures a detection model version (YOLO or TensorFlow OD) on a dataset "
    "version's ground truth (boxes and polygons drawn by people): COCO mAP@[.5:.95], mAP@.5, "
    "recall and per-label AP, COCO's own definitions, recorded on the model version.",
    needs_model=True,
    parameters_schema={
        "type": "object",
        "properties": {
            "batch_size": {"type": "integer", "minimum": 1, "maximum": 256, "default": 8},
            "confidence_threshold": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "default": 0.001,
                "description": "boxes below it are not counted (low: the whole PR curve)",
            },
            "iou_threshold": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "default": IOU_THRESHOLD,
                "description": "the model's non-maximum suppression",
            },
            "confusion_confidence": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "default": 0.25,
                "description": "the confusion matrix counts detections from this score up",
            },
            "label_mapping": LABEL_MAPPING_SCHEMA,
            "threads": THREADS_SCHEMA,
        },
    },
    timeout_s=6 * 3600,
)


def run(ctx: ProcessingContext) -> None:
    params = ctx.parameters
    model = ctx.model_version
    if model is None:
        raise RuntimeError("model-evaluation needs a model version")
    version_labels = [label.name for label in ctx.labels()]
    mapping = map_labels(model.labels, version_labels, params["label_mapping"])
    measured = [name for name in version_labels if name in set(mapping.values())]
    category = {name: i + 1 for i, name in enumerate(measured)}
    ctx.log.info("model %s/%s on version %s: labels measured: %s", model.model, model.name,
                 ctx.input_version.name, ", ".join(measured))  # fmt: skip
    predictor = load_predictor(ctx, model, max_detections=MAX_DETECTIONS)
    total = ctx.stats().assets
    images: list[dict[str, Any]] = []
    truths: list[dict[str, Any]] = []
    found: list[dict[str, Any]] = []
    started = time.perf_counter()
    for batch in ctx.iter_assets(batch_size=params["batch_size"], with_annotations=True):
        for item, dets in zip(batch, predictor.predict([b.image for b in batch]), strict=True):
            image_id = len(images) + 1
            images.append({"id": image_id, "width": item.asset.width,
                           "height": item.asset.height})  # fmt: skip
            for annotation in item.annotations or []:
                if annotation.author_kind != "user":
                    continue
                for shape in annotation.shapes:
                    box = _box(shape)
                    if shape.label in category and shape.kind in GROUND_TRUTH_KINDS and box:
                        truths.append({"id": len(truths) + 1, "image_id": image_id,
                                       "category_id": category[shape.label], "bbox": box,
                                       "area": box[2] * box[3], "iscrowd": 0})  # fmt: skip
            for (x0, y0, x1, y1), score, cls in zip(dets.xyxy, dets.score, dets.class_id,
                                                    strict=True):  # fmt: skip
                label = mapping.get(int(cls))
                if label is not None:
                    found.append({"image_id": image_id, "category_id": category[label],
                                  "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                                  "score": float(score)})  # fmt: skip
        ctx.progress(len(images) + ctx.failures, total)
    took = time.perf_counter() - started
    ctx.log.info("%d images in %.1f s: %d ground-truth boxes, %d detections", len(images), took,
                 len(truths), len(found))  # fmt: skip
    metrics = evaluate(images, truths, found, measured)
    metrics.confusion = confusion(truths, found, measured, params["confusion_confidence"])
    metrics.parameters = dict(params)
    ctx.log.info("mAP@[.5:.95] %.4f, mAP@.5 %.4f, recall %.4f", metrics.map, metrics.map50,
                 metrics.recall)  # fmt: skip
    for label in metrics.labels:
        ctx.log.info("  %s: AP %s, AP50 %s, recall %s (%d ground truth, %d detections)",
                     label.label, _fmt(label.ap), _fmt(label.ap50), _fmt(label.recall),
                     label.ground_truth, label.predictions)  # fmt: skip
    evaluation = ctx.record_evaluation(metrics)
    ctx.log.info("evaluation %d recorded on model version %s", evaluation.id, model.id)


def evaluate(
    images: list[dict[str, Any]],
    truths: list[dict[str, Any]],
    found: list[dict[str, Any]],
    labels: list[str],
) -> EvaluationMetrics:
    """COCO box metrics of `found` against `truths` (COCO dicts, category ids 1..len(labels))."""
    import numpy as np
    from faster_coco_eval import COCO, COCOeval_faster

    truth = COCO()
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(labels)]
    truth.dataset = {"images": images, "annotations": truths, "categories": categories}
    truth.createIndex()
    truth_counts = Counter(t["category_id"] for t in truths)
    found_counts = Counter(f["category_id"] for f in found)
    per_label_truth = [truth_counts[i + 1] for i in range(len(labels))]
    per_label_found = [found_counts[i + 1] for i in range(len(labels))]
    if not found or not truths:
        return EvaluationMetrics(
            map=0.0, map50=0.0, recall=0.0, images=len(images), ground_truth=len(truths),
            predictions=len(found),
            labels=[LabelMetrics(label=n, ap=0.0 if per_label_truth[i] else None,
                                 ap50=0.0 if per_label_truth[i] else None,
                                 recall=0.0 if per_label_truth[i] else None,
                                 ground_truth=per_label_truth[i], predictions=per_label_found[i])
                    for i, n in enumerate(labels)],
        )  # fmt: skip
    coco = COCOeval_faster(truth, truth.loadRes(found), "bbox", print_function=print)
    coco.evaluate()
    coco.accumulate()
    coco.summarize()  # COCO's own table, into the run's log
    precision = coco.eval["precision"]  # [IoU, recall, label, area, max detections]
    recall = coco.eval["recall"]  # [IoU, label, area, max detections]
    per_label, curves = [], {}
    for k, name in enumerate(labels):
        curve = precision[:, :, k, 0, -1]
        valid = curve[curve > -1]
        at50 = precision[0, :, k, 0, -1]
        r50 = recall[0, k, 0, -1]
        has = per_label_truth[k] > 0
        if has:
            curves[name] = [round(max(float(p), 0.0), 6) for p in at50]
        per_label.append(LabelMetrics(
            label=name, ap=float(np.mean(valid)) if has and valid.size else None,
            ap50=float(np.mean(at50[at50 > -1])) if has and (at50 > -1).any() else None,
            recall=float(r50) if has and r50 > -1 else None,
            ground_truth=per_label_truth[k], predictions=per_label_found[k],
        ))  # fmt: skip
    return EvaluationMetrics(
        map=max(float(coco.stats[0]), 0.0), map50=max(float(coco.stats[1]), 0.0),
        recall=max(float(coco.stats[8]), 0.0), images=len(images), ground_truth=len(truths),
        predictions=len(found), labels=per_label, pr_curves=curves,
    )  # fmt: skip


def confusion(
    truths: list[dict[str, Any]], found: list[dict[str, Any]], labels: list[str], confidence: float
) -> Confusion:
    """Which label each truth was detected as (see `Confusion`), category ids 1..len(labels)."""
    import numpy as np

    n = len(labels)
    matrix = np.zeros((n + 1, n + 1), dtype=np.int64)  # + background row, + missed column
    truths_of: dict[int, list[dict[str, Any]]] = {}
    for t in truths:
        truths_of.setdefault(t["image_id"], []).append(t)
    found_of: dict[int, list[dict[str, Any]]] = {}
    for f in found:
        if f["score"] >= confidence:
            found_of.setdefault(f["image_id"], []).append(f)
    for image_id in truths_of.keys() | found_of.keys():
        mine = truths_of.get(image_id, [])
        taken = [False] * len(mine)
        for det in sorted(found_of.get(image_id, []), key=lambda f: -f["score"]):
            ious = [0.0 if taken[i] else _iou(det["bbox"], t["bbox"]) for i, t in enumerate(mine)]
            best = int(np.argmax(ious)) if ious else -1
            if best >= 0 and ious[best] >= 0.5:
                taken[best] = True
                matrix[mine[best]["category_id"] - 1, det["category_id"] - 1] += 1
            else:
                matrix[n, det["category_id"] - 1] += 1
        for t, was_taken in zip(mine, taken, strict=True):
            if not was_taken:
                matrix[t["category_id"] - 1, n] += 1
    return Confusion(labels=labels, confidence=confidence, matrix=matrix.tolist())


def _iou(a: list[float], b: list[float]) -> float:
    """IoU of two [x, y, w, h] boxes."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _box(shape: Any) -> list[float] | None:
    """A shape's [x, y, w, h]: its box, or its polygon's extent."""
    if shape.bbox:
        return [float(v) for v in shape.bbox]
    if shape.points:
        xs = [p[0] for p in shape.points]
        ys = [p[1] for p in shape.points]
        return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
    return None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
