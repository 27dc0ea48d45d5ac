"""`TfOdPredictor`: a TensorFlow Object Detection API model, converted to ONNX, on onnxruntime.

Such a graph does its own resizing and non-maximum suppression: it takes uint8 RGB images at
their own size and answers `detection_boxes` ([ymin, xmin, ymax, xmax] in 0..1 of the image),
`detection_scores`, `detection_classes` (label-map ids, from 1) and `num_detections`. What is
left here is thresholds and the way back to pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

from darkroom.inference.defaults import CONFIDENCE_THRESHOLD, MAX_DETECTIONS
from darkroom.inference.detections import Detections
from darkroom.inference.tf_graph import TF_OD_INPUT, TF_OD_OUTPUTS

__all__ = ["TfOdPredictor", "decode_tf_od"]


def decode_tf_od(
    outputs: dict[str, np.ndarray],
    width: int,
    height: int,
    num_classes: int,
    confidence_threshold: float = CONFIDENCE_THRESHOLD,
    max_detections: int = MAX_DETECTIONS,
) -> Detections:
    """One image's outputs (batch axis included) as Detections in pixels; class ids become
    0-based indexes into the model's labels, and ids beyond its label map are dropped."""
    count = int(outputs["num_detections"][0])
    boxes = outputs["detection_boxes"][0][:count]
    scores = outputs["detection_scores"][0][:count].astype(np.float32)
    classes = outputs["detection_classes"][0][:count].astype(np.int64) - 1
    keep = (scores >= confidence_threshold) & (classes >= 0) & (classes < num_classes)
    boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
    order = np.argsort(-scores, kind="stable")[:max_detections]
    ymin, xmin, ymax, xmax = boxes[order].T.clip(0, 1)
    xyxy = np.stack([xmin * width, ymin * height, xmax * width, ymax * height], axis=1)
    return Detections(xyxy.astype(np.float32).reshape(-1, 4), scores[order], classes[order])


class TfOdPredictor:
    """Images (H, W, 3) uint8 RGB in, `Detections` in each image's pixels out; one image per
    call of the model, as TF-OD graphs take a batch of images of one size only."""

    def __init__(
        self,
        session: ort.InferenceSession,
        *,
        num_classes: int,
        confidence_threshold: float = CONFIDENCE_THRESHOLD,
        max_detections: int = MAX_DETECTIONS,
    ) -> None:
        inputs = [i.name for i in session.get_inputs()]
        if len(inputs) != 1 or inputs[0].split(":")[0] != TF_OD_INPUT:
            raise ValueError(f"expected one input {TF_OD_INPUT!r}, got {inputs}")
        outputs = {o.name.split(":")[0]: o.name for o in session.get_outputs()}
        missing = [n for n in TF_OD_OUTPUTS if n not in outputs]
        if missing:
            raise ValueError(f"not a TF-OD graph: no output {', '.join(missing)}")
        self.session = session
        self.input_name = inputs[0]
        self.output_names = [outputs[n] for n in TF_OD_OUTPUTS]
        self.num_classes = num_classes
        self.confidence_threshold = confidence_threshold
        self.max_detections = max_detections

    def predict(self, images: Sequence[np.ndarray]) -> list[Detections]:
        results = []
        for image in images:
            raw = self.session.run(self.output_names, {self.input_name: image[None]})
            height, width = image.shape[:2]
            outputs = dict(zip(TF_OD_OUTPUTS, raw, strict=True))
            dets = decode_tf_od(
                outputs, width, height, self.num_classes,
                self.confidence_threshold, self.max_detections,
            )  # fmt: skip
            results.append(dets)
        return results
