"""The client is a public API users code against: its exported names are locked here."""

from __future__ import annotations

import darkroom.client
import darkroom.errors


def test_client_exports():
    assert sorted(darkroom.client.__all__) == ["ApiError", "Client", "DEFAULT_URL"]


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
