"""TensorFlow Object Detection models in the registry: a real frozen graph, read without
TensorFlow; what is not one is refused with a 4xx saying why."""

from __future__ import annotations

import io
import json

import pytest

from tests.api.test_models import DOCLAYNET
from tests.engine.test_tf_preannotation import PEDESTRIAN
from tests.helpers import zip_bytes
from tests.unit.test_inference_models import model_path

LABEL_MAP = b"""item {
  id: 1
  name: 'person'
}
item { id: 3 display_name: "bicycle" name: "/m/0199g" }
"""


@pytest.fixture(scope="module")
def graph() -> bytes:
    return model_path(*PEDESTRIAN).read_bytes()


@pytest.fixture
def model(api):
    return api.post("/api/v1/models", json={"name": "pedestrians"}).json()


def upload(api, model_id, data, label_map=None, **form):
    files = {"file": ("frozen_inference_graph.pb", data, "application/octet-stream")}
    if label_map is not None:
        files["label_map"] = ("label_map.pbtxt", io.BytesIO(label_map), "text/plain")
    return api.post(f"/api/v1/models/{model_id}/versions", data=form, files=files)


def test_frozen_graph_with_labels_is_a_tf_od_version(api, model, graph):
    r = upload(api, model["id"], graph, labels="person")
    assert r.status_code == 201, r.text
    v = r.json()
    assert (v["format"], v["family"], v["labels"]) == ("tf-graph", "tf-od", ["person"])
    assert v["input_size"] == [300, 300]  # what its preprocessor resizes to
    assert v["metadata"]["nodes"] > 1000
    assert api.get(f"/api/v1/model-versions/{v['id']}/weights").content == graph


def test_label_map_gives_the_names_in_class_id_order(api, model, graph):
    r = upload(api, model["id"], graph, label_map=LABEL_MAP)
    assert r.status_code == 201, r.text
    assert r.json()["labels"] == ["person", "class_2", "bicycle"]


@pytest.mark.parametrize(
    ("label_map", "form", "code", "words"),
    [
        (None, {}, "labels_required", "give its labels"),
        (b"item { name: 'x' }", {}, "bad_label_map", "without an id"),
        (b"\xff\xfe", {}, "bad_label_map", "label map"),
        (b"nothing here", {}, "bad_label_map", "no `item"),
        (LABEL_MAP, {"labels": "person"}, "invalid_input", "not both"),
    ],
)
def test_a_graph_without_usable_labels_is_422(api, model, graph, label_map, form, code, words):
    r = upload(api, model["id"], graph, label_map=label_map, **form)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code
    assert words in r.json()["error"]["message"]


@pytest.mark.parametrize(
    "data",
    [
        b"\x0a\x05hello" + b"\x00" * 50,  # starts like a GraphDef, is not one
        b"\x0a\x03\x0a\x01x",  # a GraphDef of one node that is not a detection graph
        b"not a graph at all",
    ],
)
def test_what_is_not_a_tf_od_graph_is_415(api, model, data):
    r = upload(api, model["id"], data, family="tf-od", labels="person")
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] in ("not_tf_graph", "not_onnx")


def test_an_onnx_model_that_is_not_tf_od_is_422(api, model):
    r = upload(api, model["id"], DOCLAYNET.read_bytes(), family="tf-od", labels="a,b")
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "unsupported_model"
    assert "image_tensor" in r.json()["error"]["message"]


def test_unknown_family_is_422(api, model, graph):
    r = upload(api, model["id"], graph, family="tf-detector", labels=json.dumps(["person"]))
    assert r.status_code == 422
    assert "tf-od" in r.json()["error"]["message"]


def test_tf_preannotation_refuses_a_yolo_model_at_launch(api, model, version):
    yolo = api.post("/api/v1/models", json={"name": "yolo"}).json()
    mv = upload(api, yolo["id"], DOCLAYNET.read_bytes()).json()
    api.post(f"/api/v1/versions/{version['id']}/labels", json={"name": "Text"})
    r = api.post("/api/v1/jobs", json={"processing": "tf-preannotation",
                                       "target_version_id": version["id"],
                                       "model_version_id": mv["id"]})  # fmt: skip
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "wrong_model_family"


def test_saved_model_zip_is_a_tf_od_version(api, model, saved_model_zips):
    data = saved_model_zips["tf2"].read_bytes()
    r = upload(api, model["id"], data, label_map=LABEL_MAP, name="saved")
    assert r.status_code == 201, r.text
    v = r.json()
    assert (v["format"], v["family"], v["input_size"]) == ("tf-saved-model", "tf-od", [300, 300])
    assert v["labels"] == ["person", "class_2", "bicycle"]
    assert (v["metadata"]["input"], v["metadata"]["folder"]) == ("input_tensor", "saved_model")
    assert api.get(f"/api/v1/model-versions/{v['id']}/weights").content == data
    r = upload(api, model["id"], data, name="again")
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "labels_required"


@pytest.mark.parametrize(
    ("entries", "status", "code", "words"),
    [
        ({"model/variables/x.index": b"1"}, 415, "not_tf_saved_model", "one saved_model.pb"),
        ({"saved_model.pb": b"\x12\x00"}, 415, "not_tf_saved_model", "no 'serving_default'"),
        ({"../saved_model.pb": b"x"}, 422, "unsafe_archive", "escapes the archive"),
    ],
)
def test_what_is_not_a_saved_model_zip_is_refused(api, model, entries, status, code, words):
    r = upload(api, model["id"], zip_bytes(entries), labels="person")
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert words in r.json()["error"]["message"]
