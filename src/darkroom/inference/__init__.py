"""Inference on ONNX detection models, shared by processings and benchmarks (no HTTP here).

session = create_session("yolov8n.onnx")
info = read_model_info(session)
predictor = YoloPredictor(session, family="yolov8", input_size=info.input_size)
[dets] = predictor.predict([image])          # Detections in the image's own pixels
"""

from importlib import import_module
from typing import Any

# Loaded on first use: the server imports `darkroom.inference.labels` and must not pay for
# onnxruntime and OpenCV (about 50 MB and 0.1 s) it never calls.
_LAZY = {
    "DECODERS": "decoders",
    "decode_yolov5": "decoders",
    "decode_yolov8": "decoders",
    "Detections": "detections",
    "Letterbox": "letterboxing",
    "letterbox": "letterboxing",
    "batched_nms": "suppression",
    "nms": "suppression",
    "YoloPredictor": "predictor",
    "TfOdPredictor": "tf_od",
    "ModelInfo": "session",
    "create_session": "session",
    "read_model_info": "session",
}

__all__ = [
    "DECODERS",
    "Detections",
    "Letterbox",
    "ModelInfo",
    "TfOdPredictor",
    "YoloPredictor",
    "batched_nms",
    "create_session",
    "decode_yolov5",
    "decode_yolov8",
    "letterbox",
    "nms",
    "read_model_info",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"darkroom.inference.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'darkroom.inference' has no attribute {name!r}")
