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
from typing import Any

from darkroom.inference.defaults import IOU_THRESHOLD, LABEL_MAPPING_SCHEMA, THREADS_SCHEMA
from darkroom.inference.labels import map_labels
from darkroom.processings import BuiltinSpec
from darkroom.processings.coco_metrics import GROUND_TRUTH_KINDS, box_of, confusion, evaluate
from darkroom.processings.detection import DETECTION_PRELOAD, load_predictor
from darkroom.runtime import ProcessingContext

# What a standby runtime loads ahead when this processing ran last (the server does not).
PRELOAD = (*DETECTION_PRELOAD, "faster_coco_eval")

MAX_DETECTIONS = 100  # COCO's own limit per image for mAP and recall

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
                    box = box_of(shape)
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


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
