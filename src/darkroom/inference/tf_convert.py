"""TensorFlow Object Detection models to ONNX with tf2onnx: a frozen graph (`tf_graph`) or a
SavedModel zip (`tf_saved_model`); neither of those two imports this one or the other's
conversion."""

from __future__ import annotations

import zipfile
from pathlib import Path

from darkroom.inference.tf_graph import convert_graph
from darkroom.inference.tf_saved_model import convert_saved_model

__all__ = ["convert_to_onnx"]


def convert_to_onnx(model: Path, out: Path, opset: int = 17) -> float:
    """Converts a TF-OD model, a frozen graph or a SavedModel zip, to ONNX at `out`; returns the
    seconds it took. Needs `tensorflow-cpu` and `tf2onnx` (the `darkroom[tensorflow]` extra)
    where it runs."""
    if zipfile.is_zipfile(model):
        return convert_saved_model(model, out, opset)
    return convert_graph(model, out, opset)
