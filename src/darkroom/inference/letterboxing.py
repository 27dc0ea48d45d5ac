"""Letterbox: resize keeping the aspect ratio, pad to the model's input with grey (114)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["PAD_VALUE", "Letterbox", "letterbox"]

PAD_VALUE = 114


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How an image was placed in the model input: `input = original * scale + (pad_x, pad_y)`."""

    scale: float
    pad_x: float
    pad_y: float
    width: int  # of the original image
    height: int

    def to_original(self, xyxy: np.ndarray) -> np.ndarray:
        """Boxes from model-input pixels back to the original image, clipped to it."""
        out = xyxy.astype(np.float32, copy=True)
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.scale
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.scale
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, self.width)
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, self.height)
        return out

    def to_input(self, xyxy: np.ndarray) -> np.ndarray:
        out = xyxy.astype(np.float32, copy=True)
        out[:, [0, 2]] = out[:, [0, 2]] * self.scale + self.pad_x
        out[:, [1, 3]] = out[:, [1, 3]] * self.scale + self.pad_y
        return out


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """`image` (H, W, 3) uint8 RGB into a (size_h, size_w, 3) canvas, centred, grey padded."""
    height, width = image.shape[:2]
    target_h, target_w = size
    scale = min(target_w / width, target_h / height)
    new_w, new_h = round(width * scale), round(height * scale)
    if (new_w, new_h) != (width, height):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_x, pad_y = (target_w - new_w) / 2, (target_h - new_h) / 2
    left, top = round(pad_x - 0.1), round(pad_y - 0.1)
    canvas = np.full((target_h, target_w, 3), PAD_VALUE, dtype=np.uint8)
    canvas[top : top + new_h, left : left + new_w] = image
    return canvas, Letterbox(scale, float(left), float(top), width, height)
