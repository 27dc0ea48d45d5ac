"""The client and the runtime SDK are public APIs users code against: their exported names are
locked here, and so is what a processing can call on its context."""

from __future__ import annotations

import darkroom.client
import darkroom.errors
import darkroom.runtime
from darkroom.runtime import ProcessingContext


def test_client_exports():
    assert sorted(darkroom.client.__all__) == ["ApiError", "Client", "DEFAULT_URL"]


def test_runtime_exports():
    assert sorted(darkroom.runtime.__all__) == [
        "AnnotationItem", "Asset", "Confusion", "Deployment", "Evaluation", "EvaluationMetrics",
        "Label", "LabelMetrics", "Limits", "LoadedAsset", "ModelVersion", "Prediction",
        "ProcessingContext", "ProcessingInfo", "Shape", "StoredAnnotation", "TooManyFailures",
        "Version", "VersionStats", "Window",
    ]  # fmt: skip
    for name in darkroom.runtime.__all__:
        assert getattr(darkroom.runtime, name) is not None


def test_the_context_offers_the_sdk_and_not_the_client():
    methods = sorted(
        n
        for n in dir(ProcessingContext)
        if not n.startswith("_") and callable(getattr(ProcessingContext, n))
    )
    assert methods == [
        "add_annotations", "add_model_version", "annotations", "annotations_of",
        "clear_previous_runs_annotations",
        "create_output_version", "data_path_summary", "flush", "from_env", "iter_asset_pages",
        "iter_assets", "iter_predictions", "labels",
        "model_path", "progress", "queue_annotations", "record_evaluation", "record_failure",
        "record_metrics", "stats", "upload_images",
    ]  # fmt: skip
    assert not hasattr(ProcessingContext, "client")


def test_error_tree_has_one_root_and_http_codes():
    codes = {}
    for name in darkroom.errors.__all__:
        cls = getattr(darkroom.errors, name)
        assert issubclass(cls, darkroom.errors.DarkroomError)
        codes[name] = cls.status_code
    assert codes == {
        "Conflict": 409,
        "DarkroomError": 400,
        "Forbidden": 403,
        "InvalidInput": 422,
        "NotFound": 404,
        "PayloadTooLarge": 413,
        "Unauthorized": 401,
        "UnsupportedMediaType": 415,
    }


def test_the_server_does_not_load_inference_libraries():
    """Keeps idle memory low: onnxruntime and OpenCV load only in processes that run models."""
    import subprocess
    import sys

    code = "import sys, darkroom.api.app; print(sorted({'onnxruntime', 'cv2'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
