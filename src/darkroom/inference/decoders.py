"""Decoders from raw YOLO outputs to `Detections` in model-input pixels.

- YOLOv5: `[N, 5 + nc]` rows of cx, cy, w, h, objectness, class scores; score = obj * class.
- YOLOv8 / YOLO11: `[4 + nc, N]` columns of cx, cy, w, h, class scores (already sigmoid).

A leading batch axis of 1 is accepted. A layout that does not fit raises ValueError naming the
shape, so a wrong model is refused before a run starts, not in the middle of it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from darkroom.inference.defaults import CONFIDENCE_THRESHOLD, IOU_THRESHOLD, MAX_DETECTIONS
from darkroom.inference.detections import Detections
from darkroom.inference.suppression import batched_nms

__all__ = ["DECODERS", "check_layout", "decode_yolov5", "decode_yolov8"]


def _squeeze(output: np.ndarray) -> np.ndarray:
    if output.ndim == 3 and output.shape[0] == 1:
        output = output[0]
    if output.ndim != 2:
        raise ValueError(f"expected a 2-D output (after a batch of 1), got shape {output.shape}")
    return output


def _select(
    boxes_cxcywh: np.ndarray,
    class_scores: np.ndarray,
    confidence_threshold: float,
    iou_threshold: float,
    max_detections: int,
) -> Detections:
    """Best class per box, confidence filter, xyxy conversion, class-aware NMS, top-k."""
    class_ids = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(class_scores)), class_ids]
    mask = scores >= confidence_threshold
    if not mask.any():
        return Detections.empty()
    boxes, scores, class_ids = boxes_cxcywh[mask], scores[mask], class_ids[mask]
    xyxy = np.empty_like(boxes, dtype=np.float32)
    xyxy[:, :2] = boxes[:, :2] - boxes[:, 2:] / 2
    xyxy[:, 2:] = boxes[:, :2] + boxes[:, 2:] / 2
    keep = batched_nms(xyxy, scores, class_ids, iou_threshold)[:max_detections]
    return Detections(xyxy[keep], scores[keep].astype(np.float32), class_ids[keep].astype(np.int64))


def decode_yolov8(
    output: np.ndarray,
    num_classes: int,
    confidence_threshold: float = CONFIDENCE_THRESHOLD,
    iou_threshold: float = IOU_THRESHOLD,
    max_detections: int = MAX_DETECTIONS,
) -> Detections:
    out = _squeeze(output)
    check_layout("yolov8", out.shape, num_classes)
    preds = out.T  # (N, 4 + nc)
    return _select(preds[:, :4], preds[:, 4:], confidence_threshold, iou_threshold, max_detections)


def decode_yolov5(
    output: np.ndarray,
    num_classes: int,
    confidence_threshold: float = CONFIDENCE_THRESHOLD,
    iou_threshold: float = IOU_THRESHOLD,
    max_detections: int = MAX_DETECTIONS,
) -> Detections:
    preds = _squeeze(output)
    check_layout("yolov5", preds.shape, num_classes)
    class_scores = preds[:, 5:] * preds[:, 4:5]  # objectness x class score
    return _select(preds[:, :4], class_scores, confidence_threshold, iou_threshold, max_detections)


def check_layout(family: str, shape: tuple[int | None, ...], num_classes: int) -> None:
    """Raises ValueError when a (batch-squeezed) output shape does not fit `family`.

    A dimension given as None (dynamic in the ONNX graph) fits anything.
    """
    dims = ["?" if d is None else d for d in shape]

    def fits(dim: int | None, want: int) -> bool:
        return dim is None or dim == want

    if family == "yolov5":
        ok = len(shape) == 2 and fits(shape[1], 5 + num_classes)
        want = f"[N, {5 + num_classes}]"
    elif family in ("yolov8", "yolo11"):
        ok = len(shape) == 2 and fits(shape[0], 4 + num_classes)
        want = f"[{4 + num_classes}, N]"
    else:
        raise ValueError(f"no decoder for model family {family!r} (known: {', '.join(DECODERS)})")
    if not ok:
        raise ValueError(
            f"a {family} model with {num_classes} classes outputs {want}, this one outputs {dims}"
        )


Decoder = Callable[..., Detections]
DECODERS: dict[str, Decoder] = {
    "yolov5": decode_yolov5,
    "yolov8": decode_yolov8,
    "yolo11": decode_yolov8,
}
