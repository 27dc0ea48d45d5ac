"""Jobs on model versions: launch rules, the jobs filter, and where their results may come from."""

from __future__ import annotations

import pytest

from tests.api.test_models import DOCLAYNET


@pytest.fixture
def model_version(api):
    model = api.post("/api/v1/models", json={"name": "doclaynet"}).json()
    r = api.post(
        f"/api/v1/models/{model['id']}/versions",
        data={"name": "fp32"},
        files={"file": ("w.onnx", DOCLAYNET.read_bytes(), "application/octet-stream")},
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_a_processing_on_models_targets_a_model_version(api, model_version, version):
    r = api.post("/api/v1/jobs", json={"processing": "model-conversion",
                                       "model_version_id": model_version["id"],
                                       "parameters": {"to": "int8"}})  # fmt: skip
    assert r.status_code == 201, r.text
    job = r.json()
    assert (job["target_version_id"], job["model_version_id"]) == (None, model_version["id"])
    assert job["parameters"]["samples"] == 16
    with_samples = api.post("/api/v1/jobs", json={"processing": "model-conversion",
                                                  "model_version_id": model_version["id"],
                                                  "target_version_id": version["id"]})  # fmt: skip
    assert with_samples.status_code == 201, with_samples.text
    listed = api.get("/api/v1/jobs", params={"model_version_id": model_version["id"]}).json()
    assert [j["id"] for j in listed["items"]] == [job["id"], with_samples.json()["id"]]
    assert api.get("/api/v1/jobs", params={"model_version_id": 999}).json()["items"] == []


def test_launch_rules_name_the_missing_target(api, model_version, version):
    r = api.post("/api/v1/jobs", json={"processing": "model-conversion"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "model_required"
    r = api.post("/api/v1/jobs", json={"processing": "dataset-stats"})
    assert r.status_code == 422
    assert r.json()["error"]["details"]["loc"] == ["target_version_id"]
    r = api.post("/api/v1/jobs", json={"processing": "model-conversion",
                                       "model_version_id": model_version["id"],
                                       "parameters": {"to": "tflite"}})  # fmt: skip
    assert r.status_code == 422


def test_only_a_run_adds_the_versions_it_made(api, model_version):
    body = {"processing": "model-conversion", "model_version_id": model_version["id"]}
    job = api.post("/api/v1/jobs", json=body).json()
    r = api.post(
        f"/api/v1/runs/{job['runs'][0]['id']}/model-versions",
        data={"name": "forged"},
        files={"file": ("w.onnx", DOCLAYNET.read_bytes(), "application/octet-stream")},
    )
    assert r.status_code == 403


def test_a_job_is_listed_under_its_real_target(app, api, model_version, version):
    """Findings B6: model-conversion jobs were listed under their sample images' dataset
    version (its Jobs tab, and "Version" in the jobs list) instead of their model version."""
    from fastapi.testclient import TestClient

    from darkroom.web.auth import COOKIE
    from tests.conftest import ADMIN_TOKEN

    body = {"processing": "model-conversion", "model_version_id": model_version["id"],
            "target_version_id": version["id"]}  # fmt: skip
    conversion = api.post("/api/v1/jobs", json=body).json()
    stats = api.post("/api/v1/jobs", json={"processing": "dataset-stats",
                                           "target_version_id": version["id"]}).json()  # fmt: skip
    with TestClient(app, cookies={COOKIE: ADMIN_TOKEN}) as web:
        tab = web.get(f"/versions/{version['id']}/jobs").text
        assert f'href="/jobs/{stats["id"]}"' in tab
        assert f'href="/jobs/{conversion["id"]}"' not in tab  # not this version's job
        listed = web.get("/jobs").text
        row = listed[listed.index(f'href="/jobs/{conversion["id"]}"') :]
        row = row[: row.index("</tr>")]
        assert f'href="/model-versions/{model_version["id"]}"' in row
        assert "doclaynet / fp32" in row
        assert f'href="/versions/{version["id"]}"' not in row.split("samples")[0]
        page = web.get(f"/model-versions/{model_version['id']}").text
        assert f'href="/jobs/{conversion["id"]}"' in page
