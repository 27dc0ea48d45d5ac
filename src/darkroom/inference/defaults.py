"""Detection thresholds used when nobody says otherwise: one definition for the decoders, the
predictor and the parameters of the processings that expose them (the server imports this)."""

CONFIDENCE_THRESHOLD = 0.25
IOU_THRESHOLD = 0.45
MAX_DETECTIONS = 300
