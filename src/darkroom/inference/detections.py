"""`Detections`: parallel arrays of boxes, scores and class ids, like supervision's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Detections"]


@dataclass(frozen=True)
class Detections:
    """N detections: `xyxy` (N, 4) float32 pixels, `score` (N,) float32, `class_id` (N,) int64."""

    xyxy: np.ndarray
    score: np.ndarray
    class_id: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if self.xyxy.shape != (n, 4):
            raise ValueError(f"xyxy must be (N, 4), got {self.xyxy.shape}")
        if self.score.shape != (n,) or self.class_id.shape != (n,):
            raise ValueError(
                f"score and class_id must be ({n},), got {self.score.shape}, {self.class_id.shape}"
            )

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int64)
        )

    @classmethod
    def merge(cls, parts: Sequence[Detections]) -> Detections:
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([p.xyxy for p in parts]),
            np.concatenate([p.score for p in parts]),
            np.concatenate([p.class_id for p in parts]),
        )

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: Any) -> Detections:
        """A subset by boolean mask, index array or slice."""
        if isinstance(index, int):
            index = [index]
        return Detections(self.xyxy[index], self.score[index], self.class_id[index])
