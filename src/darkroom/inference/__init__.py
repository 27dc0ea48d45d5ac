"""Inference on ONNX detection models, shared by processings and benchmarks (no HTTP here).

session = create_session("yolov8n.onnx")
info = read_model_info(session)
predictor = YoloPredictor(session, family="yolov8", input_size=info.input_size)
[dets] = predictor.predict([image])          # Detections in the image's own pixels
"""

from darkroom.inference.decoders import DECODERS, decode_yolov5, decode_yolov8
from darkroom.inference.detections import Detections
from darkroom.inference.letterbox import Letterbox, letterbox
from darkroom.inference.nms import batched_nms, nms
from darkroom.inference.predictor import YoloPredictor
from darkroom.inference.session import ModelInfo, create_session, read_model_info

__all__ = [
    "DECODERS",
    "Detections",
    "Letterbox",
    "ModelInfo",
    "YoloPredictor",
    "batched_nms",
    "create_session",
    "decode_yolov5",
    "decode_yolov8",
    "letterbox",
    "nms",
    "read_model_info",
]
