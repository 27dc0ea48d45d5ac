"""Detection thresholds used when nobody says otherwise: one definition for the decoders, the
predictor and the parameters of the processings that expose them (the server imports this)."""

CONFIDENCE_THRESHOLD = 0.25
IOU_THRESHOLD = 0.45
MAX_DETECTIONS = 300

# Parameters every processing that runs a detection model offers, as JSON Schema.
LABEL_MAPPING_SCHEMA = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    "default": {},
    "description": "model label -> version label, for names that differ",
}
THREADS_SCHEMA = {
    "type": "integer",
    "minimum": 0,
    "maximum": 64,
    "default": 0,
    "description": "onnxruntime threads (0: all cores)",
}
