"""`yolo-preannotation`: boxes from a YOLO model version on every asset of a version.

Written only against the runtime SDK; the run itself (labels, skips, earlier jobs, progress) is
the one every pre-annotation processing shares (`darkroom.processings.detection`).
"""

from __future__ import annotations

from darkroom.inference.defaults import IOU_THRESHOLD
from darkroom.processings import BuiltinSpec
from darkroom.processings.detection import DETECTION_PRELOAD, PREANNOTATION_PARAMETERS, preannotate
from darkroom.runtime import ProcessingContext

# What a standby runtime loads ahead when this processing ran last (the server does not).
PRELOAD = DETECTION_PRELOAD

SPEC = BuiltinSpec(
    name="yolo-preannotation",
    type="pre_annotation",
    description="Pre-annotates a dataset version with a YOLO model version (v5, v8, 11): "
    "rectangles with scores, only for labels the version has.",
    needs_model=True,
    model_families=("yolov5", "yolov8", "yolo11"),
    parameters_schema={
        "type": "object",
        "properties": {
            **PREANNOTATION_PARAMETERS,
            "iou_threshold": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "default": IOU_THRESHOLD,
            },
        },
    },
    timeout_s=6 * 3600,
)


def run(ctx: ProcessingContext) -> None:
    preannotate(ctx)
