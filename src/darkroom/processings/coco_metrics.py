"""COCO box metrics the evaluation processings share (`model-evaluation` on a model's fresh
detections, `deployment-evaluation` on a deployment's served ones): faster-coco-eval for
pycocotools' figures, and a confusion matrix at IoU 0.5. This module defines no `SPEC`."""

from __future__ import annotations

from collections import Counter
from typing import Any

from darkroom.runtime import Confusion, EvaluationMetrics, LabelMetrics

__all__ = ["GROUND_TRUTH_KINDS", "box_of", "confusion", "evaluate"]

# What a person drew that counts as ground truth (a polygon by its extent).
GROUND_TRUTH_KINDS = ("rectangle", "polygon")


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


def box_of(shape: Any) -> list[float] | None:
    """A shape's [x, y, w, h]: its box, or its polygon's extent."""
    if shape.bbox:
        return [float(v) for v in shape.bbox]
    if shape.points:
        xs = [p[0] for p in shape.points]
        ys = [p[1] for p in shape.points]
        return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
    return None
