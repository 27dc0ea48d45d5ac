"""Processings on models: `model-conversion` launched on a model version through the API, its
result a new version of the same model with lineage and a report, used by later jobs."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from darkroom.inference import Detections
from darkroom.inference.deviation import deviation
from tests.engine.conftest import log_text, wait_for
from tests.engine.test_tf_preannotation import ASTRONAUT, PEDESTRIAN, iou, png
from tests.helpers import rendered_page
from tests.unit.test_inference_models import DOCLAYNET, model_path


def finished(dr, job, timeout_s=240):
    run = wait_for(lambda: dr.get_run(job["runs"][-1]["id"]), lambda r: r["finished_at"], timeout_s)
    log = log_text(dr, run["id"])
    assert run["status"] == "succeeded", log
    return run, log


def new_version(dr, model_id, job_id):
    [made] = [v for v in dr.list_model_versions(model_id) if v["produced_by_job_id"] == job_id]
    return made


@pytest.mark.slow
def test_tf_graph_to_onnx_then_preannotation_without_tensorflow(dr):
    model = dr.create_model("pedestrians")
    graph = dr.upload_model_version(model["id"], model_path(*PEDESTRIAN), labels=["person"])
    samples = dr.create_version(dr.create_dataset("people")["id"], "samples")
    dr.create_label(samples["id"], "person")
    [photo] = dr.upload_assets(samples["id"], [("astronaut.png", png(skimage.data.astronaut()))])

    job = dr.launch_job("model-conversion", samples["id"], model_version_id=graph["id"],
                        parameters={"to": "onnx"})  # fmt: skip
    assert (job["model_version_id"], job["target_version_id"]) == (graph["id"], samples["id"])
    _, log = finished(dr, job)
    assert "converted the TensorFlow graph to ONNX in" in log
    assert "comparing both models on 1 of version samples images" in log
    onnx = new_version(dr, model["id"], job["id"])
    assert (onnx["name"], onnx["format"], onnx["family"]) == ("v1-onnx", "onnx", "tf-od")
    assert onnx["labels"] == ["person"]
    assert onnx["metadata"]["source_version_id"] == graph["id"]
    report = onnx["metadata"]["conversion"]
    assert report["conversion"] == "tf-graph -> onnx"
    assert report["deviation"]["paired"] >= 1
    assert report["deviation"]["only_source"] == report["deviation"]["only_result"] == 0
    assert report["deviation"]["max_box_px"] < 0.5  # the same graph, two runtimes
    assert report["deviation"]["max_score"] < 1e-3
    assert report["images_per_s"]["result"] > 0
    assert f"new model version v1-onnx (id {onnx['id']})" in log
    assert [j["id"] for j in dr.list_jobs(model_version_id=graph["id"])] == [job["id"]]

    # The ONNX version pre-annotates at once: no conversion, the same person box.
    pre = dr.launch_job("tf-preannotation", samples["id"], model_version_id=onnx["id"])
    _, log = finished(dr, pre)
    assert "converted the TensorFlow graph" not in log
    [ann] = [a for a in dr.list_annotations(photo["id"]) if a["author_kind"] == "run"]
    assert iou(ann["shapes"][0]["bbox"], ASTRONAUT) > 0.85


def detections_of(dr, version_id, run_id, labels):
    """A pre-annotation run's boxes per asset as Detections (xyxy in pixels)."""
    out = []
    for asset in dr.list_assets(version_id)["items"]:
        mine = [a for a in dr.list_annotations(asset["id"]) if a["author_kind"] == "run"]
        shapes = [s for a in mine if a["author_id"] == run_id for s in a["shapes"]]
        boxes = [s["bbox"] for s in shapes]
        xyxy = np.array([[x, y, x + w, y + h] for x, y, w, h in boxes], np.float32)
        scores = np.array([s["score"] for s in shapes], np.float32)
        classes = np.array([labels.index(s["label"]) for s in shapes], np.int64)
        out.append(Detections(xyxy.reshape(-1, 4), scores, classes))
    return out


@pytest.mark.slow
def test_int8_and_fp16_versions_report_their_deviation_and_keep_to_it(dr):
    model = dr.create_model("doclaynet")
    source = dr.upload_model_version(model["id"], model_path(*DOCLAYNET), name="fp32")
    pages = dr.create_version(dr.create_dataset("docs")["id"], "pages")
    for name in ("Text", "Title"):
        dr.create_label(pages["id"], name)
    dr.upload_assets(pages["id"], [(f"p{i}.png", rendered_page(seed=i)[0]) for i in range(3)])

    reports = {}
    for to in ("fp16", "int8"):
        job = dr.launch_job("model-conversion", pages["id"], model_version_id=source["id"],
                            parameters={"to": to})  # fmt: skip
        _, log = finished(dr, job)
        made = new_version(dr, model["id"], job["id"])
        assert made["name"] == f"fp32-{to}"
        reports[to] = made["metadata"]["conversion"]
        size = reports[to]["size_bytes"]
        assert size["result"] < size["source"] * (0.6 if to == "fp16" else 0.35), size
        assert "deviation from the source: boxes up to" in log
        reports[to]["version"] = made
    assert reports["fp16"]["deviation"]["max_box_px"] < 2.0, reports["fp16"]

    # The int8 model's boxes on these pages stay within what its report says.
    labels = source["labels"]
    jobs = {}
    for name, mv in (("fp32", source), ("int8", reports["int8"]["version"])):
        jobs[name] = dr.launch_job("yolo-preannotation", pages["id"], model_version_id=mv["id"],
                                   parameters={"earlier_jobs": "add"})  # fmt: skip
        finished(dr, jobs[name])
    measured = deviation(
        detections_of(dr, pages["id"], jobs["fp32"]["runs"][0]["id"], labels),
        detections_of(dr, pages["id"], jobs["int8"]["runs"][0]["id"], labels),
    )
    reported = reports["int8"]["deviation"]
    assert measured.paired >= 3
    assert measured.max_box_px <= reported["max_box_px"] + 1e-3, (measured, reported)
    assert measured.max_score <= reported["max_score"] + 1e-3, (measured, reported)


@pytest.mark.slow
def test_saved_model_to_onnx_keeps_tensorflows_boxes(dr, saved_model_zips):
    model = dr.create_model("pedestrians")
    saved = dr.upload_model_version(model["id"], saved_model_zips["tf1"], labels=["person"])
    assert saved["format"] == "tf-saved-model"
    samples = dr.create_version(dr.create_dataset("people")["id"], "samples")
    dr.upload_assets(samples["id"], [("astronaut.png", png(skimage.data.astronaut()))])

    job = dr.launch_job("model-conversion", samples["id"], model_version_id=saved["id"])
    _, log = finished(dr, job)
    assert "converted the TensorFlow SavedModel to ONNX in" in log
    onnx = new_version(dr, model["id"], job["id"])
    assert (onnx["format"], onnx["family"], onnx["labels"]) == ("onnx", "tf-od", ["person"])
    report = onnx["metadata"]["conversion"]
    assert report["conversion"] == "tf-saved-model -> onnx"
    assert report["deviation"]["paired"] >= 1  # TensorFlow ran the SavedModel: the reference
    assert report["deviation"]["only_source"] == report["deviation"]["only_result"] == 0
    assert report["deviation"]["max_box_px"] < 0.5
