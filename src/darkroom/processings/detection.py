"""The run the pre-annotation processings share: a detection model over every asset of a version.

Each built-in says how to build its predictor (anything with `predict(images) -> [Detections]`);
what follows is the same for all of them: the model's classes map onto the version's labels by
name (case-insensitively) or through `label_mapping`, boxes of classes that map to nothing are
skipped and counted; assets a person annotated are skipped unless `replace_existing` (people's
annotations are never changed); boxes of earlier pre-annotation jobs are replaced, skipped or
kept beside the new ones (`earlier_jobs`); a re-run replaces the boxes of the job's earlier
runs. This module defines no `SPEC`: it is not a processing of its own.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from darkroom.inference.defaults import (
    CONFIDENCE_THRESHOLD,
    IOU_THRESHOLD,
    LABEL_MAPPING_SCHEMA,
    MAX_DETECTIONS,
    THREADS_SCHEMA,
)
from darkroom.inference.labels import map_labels
from darkroom.runtime import ModelVersion, ProcessingContext

if TYPE_CHECKING:
    import numpy as np

    from darkroom.inference import Detections

__all__ = [
    "DETECTION_PRELOAD",
    "PREANNOTATION_PARAMETERS",
    "Predictor",
    "convert_tf_model",
    "load_predictor",
    "preannotate",
    "predictor_for",
    "to_shapes",
]

# What a standby runtime imports ahead for a processing that runs detection models: the modules
# themselves (`darkroom.inference` alone loads lazily, so it would preload nothing): onnxruntime
# and the predictors, 0.3 s of a run's start otherwise.
DETECTION_PRELOAD = (
    "onnxruntime",
    "darkroom.inference.predictor",
    "darkroom.inference.session",
    "darkroom.inference.tf_od",
)

# The parameters of every pre-annotation processing (each adds its model's own).
PREANNOTATION_PARAMETERS: dict[str, Any] = {
    "batch_size": {"type": "integer", "minimum": 1, "maximum": 256, "default": 8},
    "confidence_threshold": {
        "type": "number",
        "minimum": 0,
        "maximum": 1,
        "default": CONFIDENCE_THRESHOLD,
    },
    "max_detections": {
        "type": "integer",
        "minimum": 1,
        "maximum": 10000,
        "default": MAX_DETECTIONS,
    },
    "label_mapping": LABEL_MAPPING_SCHEMA,
    "earlier_jobs": {
        "type": "string",
        "enum": ["replace", "skip", "add"],
        "default": "replace",
        "description": "boxes of the version's earlier pre-annotation jobs: replace "
        "them, skip the assets that have some, or add to them",
    },
    "replace_existing": {
        "type": "boolean",
        "default": False,
        "description": "also annotate assets a person already annotated (theirs stay)",
    },
    "max_failures": {"type": ["integer", "null"], "minimum": 0, "default": None},
    "threads": THREADS_SCHEMA,
}


class Predictor(Protocol):
    def predict(self, images: Sequence[np.ndarray]) -> list[Detections]: ...


def load_predictor(
    ctx: ProcessingContext, model: ModelVersion, max_detections: int | None = None
) -> Predictor:
    """The predictor for the run's model, by its family, with the run's thresholds.

    A TensorFlow model (frozen graph or SavedModel) is converted to ONNX first (tf2onnx, in
    the run's sandbox): the ONNX graph, its own post-processing included, gives TensorFlow's
    boxes to 1e-6 on onnxruntime at twice TensorFlow's speed. A model tf2onnx cannot convert
    runs on TensorFlow itself, with a warning in the log."""
    from darkroom.inference.tf_graph import TF_FORMATS, TensorFlowMissing

    params = ctx.parameters
    weights = source = ctx.model_path()
    thresholds = {"confidence_threshold": params["confidence_threshold"],
                  "max_detections": max_detections or params["max_detections"]}  # fmt: skip
    if model.format in TF_FORMATS:
        try:
            weights = convert_tf_model(ctx, weights, model.format)
        except TensorFlowMissing:
            raise
        except Exception as exc:  # tf2onnx refuses some graphs (loops it cannot rewrite, ...)
            from darkroom.inference.tf_od import tensorflow_predictor

            ctx.log.warning(
                "tf2onnx could not convert the model (%s: %s): running it on TensorFlow, "
                "about half as fast", type(exc).__name__, str(exc).splitlines()[0][:200],
            )  # fmt: skip
            return tensorflow_predictor(
                source, model.format, num_classes=len(model.labels), **thresholds
            )
    return predictor_for(
        weights, model, **thresholds,
        iou_threshold=params.get("iou_threshold", IOU_THRESHOLD), threads=params.get("threads"),
        gpus=ctx.gpus,
    )  # fmt: skip


def convert_tf_model(ctx: ProcessingContext, weights: Path, fmt: str) -> Path:
    """The TensorFlow model (`fmt`: tf-graph, tf-saved-model) as ONNX, in a folder of the run's
    own; the time it took is logged."""
    from darkroom.inference.tf_convert import convert_to_onnx

    converted = Path(tempfile.mkdtemp(prefix="darkroom-tf-")) / "model.onnx"
    took = convert_to_onnx(weights, converted)
    what = "SavedModel" if fmt == "tf-saved-model" else "graph"
    ctx.log.info("converted the TensorFlow %s to ONNX in %.1f s", what, took)
    return converted


def predictor_for(
    weights: Path,
    model: ModelVersion,
    *,
    confidence_threshold: float,
    max_detections: int,
    iou_threshold: float = IOU_THRESHOLD,
    threads: int | None = None,
    spinning: bool = False,
    gpus: int = 0,
) -> Predictor:
    """ONNX weights of `model`'s family as a predictor. `spinning`: idle intra-op threads
    busy-wait between operators, as onnxruntime does by default: 10-15% less latency on one
    image, at the cost of the cores other threads (a run's image decoders) would use."""
    # Imported here: the server imports the processings for their SPEC, not onnxruntime.
    from darkroom.inference import TfOdPredictor, YoloPredictor, create_session

    session = create_session(weights, intra_op_threads=threads or None, spinning=spinning,
                             gpus=gpus)  # fmt: skip
    if model.family == "tf-od":  # the graph suppresses overlaps itself
        return TfOdPredictor(
            session, num_classes=len(model.labels), confidence_threshold=confidence_threshold,
            max_detections=max_detections,
        )  # fmt: skip
    return YoloPredictor.for_model(
        session, model, confidence_threshold=confidence_threshold,
        iou_threshold=iou_threshold, max_detections=max_detections,
    )  # fmt: skip


def preannotate(
    ctx: ProcessingContext,
    load: Callable[[ProcessingContext, ModelVersion], Predictor] = load_predictor,
) -> None:
    """Pre-annotates the run's input version with the predictor `load` builds (called in a
    background thread while the server is asked what to do and the first images are read)."""
    params = ctx.parameters
    model = ctx.model_version
    if model is None:
        raise RuntimeError(f"{ctx.processing.name} needs a model version")
    version_labels = [label.name for label in ctx.labels()]
    mapping = map_labels(model.labels, version_labels, params["label_mapping"])
    unmapped = [name for i, name in enumerate(model.labels) if i not in mapping]
    ctx.log.info("model %s/%s (%s, %s, input %s): %d of %d classes map to the version's labels",
                 model.model, model.name, model.family, model.format, model.input_size,
                 len(mapping), len(model.labels))  # fmt: skip
    if unmapped:
        ctx.log.info(
            "classes without a label here (their boxes are skipped): %s", ", ".join(unmapped)
        )

    with ThreadPoolExecutor(1, thread_name_prefix="darkroom-model") as pool:
        loading = pool.submit(load, ctx, model)
        earlier = params["earlier_jobs"]
        cleared = ctx.clear_previous_runs_annotations(earlier_jobs=earlier == "replace")
        if cleared:
            whose = "earlier pre-annotation jobs" if earlier == "replace" else "this job's runs"
            ctx.log.info("removed %d annotations of %s", cleared, whose)
        filters: dict[str, bool] = {} if params["replace_existing"] else {"human_annotated": False}
        if earlier == "skip":
            filters["run_annotated"] = False
        total = sum(len(page) for page in ctx.iter_asset_pages(page_size=1000, **filters))
        if filters:
            skipped_assets = ctx.stats().assets - total
            if skipped_assets and not ctx.resume:
                by = " or ".join(
                    ["a person"] * ("human_annotated" in filters)
                    + ["an earlier pre-annotation"] * ("run_annotated" in filters)
                )
                ctx.log.info("%d assets already annotated by %s are skipped", skipped_assets, by)
        ctx.progress(0, total, force=True)
        batches = ctx.iter_assets(batch_size=params["batch_size"], prefetch=2, **filters)
        first = next(batches, None)
        predictor = loading.result()

    boxes: Counter[str] = Counter()
    skipped_boxes: Counter[str] = Counter()
    done = 0
    started = time.perf_counter()
    for batch in itertools.chain([first] if first else [], batches):
        rows, empty = [], []
        for item, dets in zip(batch, predictor.predict([b.image for b in batch]), strict=True):
            shapes = to_shapes(dets, mapping, model.labels, boxes, skipped_boxes)
            if shapes:
                rows.append({"asset_id": item.id, "shapes": shapes})
            else:
                empty.append(item.id)
        ctx.queue_annotations(rows, done=empty)  # written while the next batch runs
        done += len(batch)
        ctx.progress(done + ctx.failures, total)  # unreadable images are handled too
    ctx.flush()
    took = time.perf_counter() - started
    ctx.progress(done + ctx.failures, total, force=True)

    ctx.log.info("images: %d in %.1f s (%.1f images/s)", done, took, done / took if took else 0.0)
    for label, n in sorted(boxes.items()):
        ctx.log.info("boxes %s: %d", label, n)
    if skipped_boxes:
        ctx.log.info("skipped boxes of unmapped classes: %s",
                     ", ".join(f"{k} {v}" for k, v in sorted(skipped_boxes.items())))  # fmt: skip
    ctx.log.info("failures: %d", ctx.failures)


def to_shapes(
    dets: Detections,
    mapping: dict[int, str],
    model_labels: list[str],
    boxes: Counter[str],
    skipped: Counter[str],
) -> list[dict[str, Any]]:
    """Rectangles for the detections whose class maps to a version label; counts the rest."""
    shapes = []
    for (x0, y0, x1, y1), score, cls in zip(dets.xyxy, dets.score, dets.class_id, strict=True):
        label = mapping.get(int(cls))
        if label is None:
            skipped[model_labels[int(cls)]] += 1
            continue
        boxes[label] += 1
        bbox = [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
        shapes.append({"kind": "rectangle", "label": label, "bbox": bbox, "score": float(score)})
    return shapes
