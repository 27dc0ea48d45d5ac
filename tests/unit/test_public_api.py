"""The client and the runtime SDK are public APIs users code against: their exported names are
locked here, and so is what a processing can call on its context."""

from __future__ import annotations

from pathlib import Path

import pytest

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
        "create_output_version", "data_path_summary", "flush", "from_env",
        "input_version_asset_count", "iter_asset_pages",
        "iter_assets", "iter_predictions", "labels",
        "model_path", "progress", "queue_annotations", "record_evaluation", "record_failure",
        "record_metrics", "stats", "upload_images",
    ]  # fmt: skip


def test_the_public_surface_matches_the_committed_file():
    """Every name, signature and field of darkroom.runtime and darkroom.client; a change here is
    a change users' code meets: regenerate the file on purpose and say so in CHANGELOG.md."""
    from tests.unit.public_surface import COMMITTED, surface

    committed = COMMITTED.read_text().splitlines()
    now = surface()
    gone = sorted(set(committed) - set(now))
    added = sorted(set(now) - set(committed))
    assert (gone, added) == ([], []), (
        f"the public API changed; gone: {gone}; added: {added}. Removing a name needs a "
        "DeprecationWarning release first (darkroom.deprecation); then run "
        "`python -m tests.unit.public_surface > tests/unit/public_api.txt` and record it in "
        "CHANGELOG.md"
    )


def test_removed_names_still_work_for_a_minor_version_and_name_their_replacement():
    """Findings D: code written against `input_version_asset_count()` (removed when the contract
    was typed) failed with AttributeError."""
    from darkroom.runtime.contract import RunContext

    calls = []

    class FakeClient:
        def version_stats(self, version_id):
            calls.append(version_id)
            return {"assets": 7, "annotated_assets": 0, "shapes": 0, "labels": []}

    context = RunContext.model_validate({
        "run_id": 1, "job_id": 1, "attempt": 1, "parameters": {},
        "processing": {"id": 1, "name": "p", "revision": 1, "source": {}, "type": "custom"},
        "target_version": {"id": 3, "dataset_id": 1, "name": "v", "description": "",
                           "parent_version_id": None, "produced_by_job_id": None,
                           "created_at": "2026-01-01T00:00:00Z",
                           "updated_at": "2026-01-01T00:00:00Z"},
        "model_version": None,
    })  # fmt: skip
    ctx = ProcessingContext(FakeClient(), context)
    with pytest.warns(DeprecationWarning, match=r"use ctx\.stats\(\)\.assets"):
        assert ctx.input_version_asset_count() == 7
    assert calls == [3]
    with pytest.warns(DeprecationWarning, match="the context's methods"):
        assert isinstance(ctx.client, FakeClient)
    changelog = (Path(__file__).resolve().parents[2] / "CHANGELOG.md").read_text()
    assert "input_version_asset_count" in changelog
    assert "ProcessingContext.client" in changelog


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

    code = "import sys, darkroom.server; print(sorted({'onnxruntime', 'cv2'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
