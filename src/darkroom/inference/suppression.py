"""Non-maximum suppression in numpy: greedy, and class-aware through coordinate offsets."""

from __future__ import annotations

import numpy as np

__all__ = ["batched_nms", "box_iou", "nms"]


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box with each of `boxes`."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def nms(xyxy: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept, best score first; a box is dropped when its IoU with a kept one exceeds
    `iou_threshold`."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        best = order[0]
        keep.append(int(best))
        if order.size == 1:
            break
        rest = order[1:]
        order = rest[box_iou(xyxy[best], xyxy[rest]) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(
    xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """NMS within each class only: boxes of different classes never suppress each other."""
    if len(xyxy) == 0:
        return np.zeros((0,), dtype=np.int64)
    offset = class_ids.astype(np.float32)[:, None] * (float(xyxy.max()) + 1.0)
    return nms(xyxy + offset, scores, iou_threshold)
