"""`TfOdPredictor`: a TensorFlow Object Detection API model, converted to ONNX, on onnxruntime
(and `TfGraphPredictor`, `TfSavedModelPredictor`: the same model on TensorFlow, what a
conversion is compared with).

Such a graph does its own resizing and non-maximum suppression: it takes uint8 RGB images at
their own size and answers `detection_boxes` ([ymin, xmin, ymax, xmax] in 0..1 of the image),
`detection_scores`, `detection_classes` (label-map ids, from 1) and `num_detections`. What is
left here is thresholds and the way back to pixels.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from darkroom.inference.defaults import CONFIDENCE_THRESHOLD, MAX_DETECTIONS
from darkroom.inference.detections import Detections
from darkroom.inference.tf_graph import TF_OD_INPUT, TF_OD_OUTPUTS

__all__ = [
    "TfGraphPredictor",
    "TfOdPredictor",
    "TfSavedModelPredictor",
    "decode_tf_od",
    "tensorflow_predictor",
]


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


class _PerImage:
    """The loop both TF-OD predictors share: one image per call, its outputs decoded."""

    num_classes: int
    confidence_threshold: float
    max_detections: int

    def _outputs(self, image: np.ndarray) -> Sequence[np.ndarray]:
        """The four outputs for one image, in `TF_OD_OUTPUTS` order."""
        raise NotImplementedError

    def predict(self, images: Sequence[np.ndarray]) -> list[Detections]:
        results = []
        for image in images:
            outputs = dict(zip(TF_OD_OUTPUTS, self._outputs(image), strict=True))
            height, width = image.shape[:2]
            dets = decode_tf_od(
                outputs, width, height, self.num_classes,
                self.confidence_threshold, self.max_detections,
            )  # fmt: skip
            results.append(dets)
        return results


class TfOdPredictor(_PerImage):
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

    def _outputs(self, image: np.ndarray) -> Sequence[np.ndarray]:
        return self.session.run(self.output_names, {self.input_name: image[None]})


class TfGraphPredictor(_PerImage):
    """The frozen graph run by TensorFlow itself: the reference a conversion is measured
    against (`model-conversion`); pre-annotation never uses it. Needs TensorFlow."""

    def __init__(
        self, graph: Path, *, num_classes: int, confidence_threshold: float, max_detections: int
    ) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf

        graph_def = tf.compat.v1.GraphDef()
        graph_def.ParseFromString(graph.read_bytes())
        self._graph = tf.Graph()
        with self._graph.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
        self._session = tf.compat.v1.Session(graph=self._graph)
        self._fetches = [f"{name}:0" for name in TF_OD_OUTPUTS]
        self.num_classes = num_classes
        self.confidence_threshold = confidence_threshold
        self.max_detections = max_detections

    def _outputs(self, image: np.ndarray) -> Sequence[np.ndarray]:
        return self._session.run(self._fetches, {f"{TF_OD_INPUT}:0": image[None]})


class TfSavedModelPredictor(_PerImage):
    """A SavedModel zip run by TensorFlow through its serving signature: the reference its
    conversion is measured against. Needs TensorFlow."""

    def __init__(
        self, zipped: Path, *, num_classes: int, confidence_threshold: float, max_detections: int
    ) -> None:
        from darkroom.inference.tf_graph import import_tensorflow
        from darkroom.inference.tf_saved_model import read_saved_model_info, unpack_saved_model

        tf, _ = import_tensorflow()
        self._tf = tf
        self._input_key = read_saved_model_info(zipped).input_key
        with tempfile.TemporaryDirectory(prefix="darkroom-savedmodel-") as tmp:
            loaded = tf.saved_model.load(str(unpack_saved_model(zipped, Path(tmp))))
        self._loaded = loaded  # the signature's function lives as long as its object
        self._serve = loaded.signatures["serving_default"]
        self.num_classes = num_classes
        self.confidence_threshold = confidence_threshold
        self.max_detections = max_detections

    def _outputs(self, image: np.ndarray) -> Sequence[np.ndarray]:
        out = self._serve(**{self._input_key: self._tf.constant(image[None])})
        return [out[name].numpy() for name in TF_OD_OUTPUTS]


def tensorflow_predictor(
    weights: Path, fmt: str, *, num_classes: int, confidence_threshold: float, max_detections: int
) -> TfGraphPredictor | TfSavedModelPredictor:
    """A TensorFlow model (format `tf-graph` or `tf-saved-model`) run by TensorFlow."""
    kind = TfSavedModelPredictor if fmt == "tf-saved-model" else TfGraphPredictor
    return kind(
        weights, num_classes=num_classes, confidence_threshold=confidence_threshold,
        max_detections=max_detections,
    )  # fmt: skip
