"""How far a converted model's detections are from its source's on the same images.

Detections are paired per image and class, greedily by IoU (at least `min_iou`); the deviation is
the largest coordinate difference in pixels and the largest score difference among the pairs.
Detections left without a partner are counted on each side: a quantized model that loses or
invents boxes near the confidence threshold shows there, not in the deviation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from darkroom.inference.detections import Detections

__all__ = ["Deviation", "deviation"]


@dataclass(frozen=True, slots=True)
class Deviation:
    max_box_px: float
    max_score: float
    paired: int
    only_source: int  # source detections the converted model did not give
    only_result: int  # and the converted model's own

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of xyxy boxes."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def deviation(
    source: Sequence[Detections], result: Sequence[Detections], min_iou: float = 0.5
) -> Deviation:
    box = score = 0.0
    paired = only_source = only_result = 0
    for src, res in zip(source, result, strict=True):
        for cls in np.union1d(src.class_id, res.class_id):
            a, b = src[src.class_id == cls], res[res.class_id == cls]
            used: set[int] = set()
            if len(a) and len(b):
                ious = _iou(a.xyxy, b.xyxy)
                for i in np.argsort(-a.score, kind="stable"):
                    order = [j for j in np.argsort(-ious[i]) if j not in used]
                    if not order or ious[i, order[0]] < min_iou:
                        continue
                    j = order[0]
                    used.add(j)
                    paired += 1
                    box = max(box, float(np.abs(a.xyxy[i] - b.xyxy[j]).max()))
                    score = max(score, float(abs(a.score[i] - b.score[j])))
            only_source += len(a) - len(used)
            only_result += len(b) - len(used)
    return Deviation(box, score, paired, only_source, only_result)
