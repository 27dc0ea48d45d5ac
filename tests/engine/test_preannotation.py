"""`yolo-preannotation` with the real DocLayNet model, launched through the API, run by the
engine."""

from __future__ import annotations

import httpx

from darkroom.web.auth import COOKIE
from tests.engine.conftest import log_text, wait_for
from tests.helpers import rendered_page
from tests.unit.test_inference_models import DOCLAYNET, FALL, model_path

VERSION_LABELS = ["Title", "Text", "Table", "Picture", "Section-header"]


def _overlap(box: list[float], region: tuple[int, int, int, int]) -> float:
    x, y, w, h = box
    rx0, ry0, rx1, ry1 = region
    inter = max(0, min(x + w, rx1) - max(x, rx0)) * max(0, min(y + h, ry1) - max(y, ry0))
    return inter / ((rx1 - rx0) * (ry1 - ry0))


def test_preannotation_end_to_end(dr, engine_server):
    ds = dr.create_dataset("papers")
    v = dr.create_version(ds["id"], "scans")
    for name in VERSION_LABELS:
        dr.create_label(v["id"], name)
    pages = [rendered_page(seed=i) for i in range(4)]
    assets = dr.upload_assets(
        v["id"], [(f"page{i}.png", data) for i, (data, _) in enumerate(pages)]
    )
    human = assets[3]
    dr.add_annotations(
        human["id"], [{"kind": "rectangle", "label": "Table", "bbox": [1, 1, 50, 50]}]
    )
    # bit rot on disk: one stored image no longer decodes
    rotten = assets[2]["blob_sha256"]
    blob = engine_server.home / "blobs" / rotten[:2] / rotten[2:4] / rotten
    blob.write_bytes(blob.read_bytes()[:300])

    model = dr.create_model("doclaynet")
    mv = dr.upload_model_version(model["id"], model_path(*DOCLAYNET), name="yolov8n")
    job = dr.launch_job("yolo-preannotation", v["id"], model_version_id=mv["id"],
                        parameters={"batch_size": 2})  # fmt: skip
    assert job["parameters"]["confidence_threshold"] == 0.25
    run = wait_for(lambda: dr.get_run(job["runs"][0]["id"]), lambda r: r["finished_at"], 120)
    log = log_text(dr, run["id"])
    assert run["status"] == "succeeded", log
    assert (
        "3 of 11 classes map" not in log
    )  # 5 labels here: Title, Text, Table, Picture, Section-header
    assert "5 of 11 classes map" in log
    assert "1 assets already annotated by a person are skipped" in log
    assert "failures: 1" in log
    assert run["progress"] == {"done": 3, "total": 3}

    def run_shapes(asset_id: int) -> list[dict]:
        anns = dr.list_annotations(asset_id)
        return [s for a in anns if a["author_kind"] == "run" for s in a["shapes"]]

    for i in (0, 1):
        shapes = run_shapes(assets[i]["id"])
        assert {s["label"] for s in shapes} <= set(VERSION_LABELS)
        texts = [s for s in shapes if s["label"] == "Text" and s["score"] > 0.5]
        assert any(_overlap(s["bbox"], pages[i][1]) > 0.6 for s in texts), shapes
    assert run_shapes(human["id"]) == []
    assert [a["author_kind"] for a in dr.list_annotations(human["id"])] == ["user"]

    # a re-run replaces the first run's boxes, never the person's
    before = len(run_shapes(assets[0]["id"]))
    rerun = dr.rerun_job(job["id"])
    second = wait_for(lambda: dr.get_run(rerun["id"]), lambda r: r["finished_at"], 120)
    assert second["status"] == "succeeded"
    anns = dr.list_annotations(assets[0]["id"])
    assert [(a["author_kind"], a["author_id"]) for a in anns] == [("run", second["id"])]
    assert len(anns[0]["shapes"]) == before
    assert [a["author_kind"] for a in dr.list_annotations(human["id"])] == ["user"]


def test_fall_model_labels_match_case_insensitively(dr):
    import io

    from PIL import Image
    from skimage import data

    ds = dr.create_dataset("people")
    v = dr.create_version(ds["id"], "v1")
    dr.create_label(v["id"], "normal")  # the model says "Normal"
    out = io.BytesIO()
    Image.fromarray(data.astronaut()).save(out, "JPEG")
    [asset] = dr.upload_assets(v["id"], [("astronaut.jpg", out.getvalue())])
    model = dr.create_model("fall")
    mv = dr.upload_model_version(model["id"], model_path(*FALL))
    job = dr.launch_job("yolo-preannotation", v["id"], model_version_id=mv["id"])
    run = wait_for(lambda: dr.get_run(job["runs"][0]["id"]), lambda r: r["finished_at"], 120)
    log = log_text(dr, run["id"])
    assert run["status"] == "succeeded", log
    assert "classes without a label here (their boxes are skipped): Fall" in log
    [ann] = dr.list_annotations(asset["id"])
    best = max(ann["shapes"], key=lambda s: s["score"])
    assert best["label"] == "normal"
    assert best["score"] > 0.5
    x, y, w, h = best["bbox"]
    assert (x < 60, x + w > 300, y < 120, y + h > 450) == (True,) * 4  # covers the person


def test_a_second_preannotation_job_replaces_the_first_ones_boxes(dr, engine_server):
    """The finding: a second pre-annotation job doubled every box (132 -> 271 shapes)."""
    ds = dr.create_dataset("papers")
    v = dr.create_version(ds["id"], "scans")
    for name in VERSION_LABELS:
        dr.create_label(v["id"], name)
    assets = dr.upload_assets(v["id"], [(f"p{i}.png", rendered_page(seed=i)[0]) for i in range(2)])
    model = dr.create_model("doclaynet")
    mv = dr.upload_model_version(model["id"], model_path(*DOCLAYNET), name="yolov8n")

    def launch(**parameters):
        job = dr.launch_job("yolo-preannotation", v["id"], model_version_id=mv["id"],
                            parameters=parameters)  # fmt: skip
        run = wait_for(lambda: dr.get_run(job["runs"][0]["id"]), lambda r: r["finished_at"], 120)
        assert run["status"] == "succeeded", log_text(dr, run["id"])
        return run, log_text(dr, run["id"])

    launch()
    once = dr.version_stats(v["id"])["shapes"]
    assert once > 0
    modal = httpx.get(
        f"{engine_server.url}/versions/{v['id']}/process",
        params={"processing": "yolo-preannotation", "model_version": mv["id"]},
        cookies={COOKIE: engine_server.token},
    )  # the Process modal says what a new job will do with them
    assert "2 assets</strong> of this version already carry boxes" in modal.text
    assert "<code>replace</code> (the default) those boxes are removed first" in modal.text
    second, log = launch()  # earlier_jobs defaults to replace
    assert dr.version_stats(v["id"])["shapes"] == once
    assert (
        f"removed {once} annotations of earlier pre-annotation jobs" not in log
    )  # rows, not shapes
    assert "annotations of earlier pre-annotation jobs" in log
    authors = {a["author_id"] for x in assets for a in dr.list_annotations(x["id"])}
    assert authors == {second["id"]}
    _, log = launch(earlier_jobs="skip")
    assert "2 assets already annotated by a person or an earlier pre-annotation are skipped" in log
    assert dr.version_stats(v["id"])["shapes"] == once
    launch(earlier_jobs="add")
    assert dr.version_stats(v["id"])["shapes"] == 2 * once


def test_pre_annotating_a_copied_version_replaces_the_copied_boxes(dr, engine_server):
    """Findings B2: on a child version copied from a pre-annotated parent, `replace` left the
    copied boxes and added new ones (72 -> 143 shapes); the parent must keep its own."""
    ds = dr.create_dataset("papers")
    parent = dr.create_version(ds["id"], "scans")
    for name in VERSION_LABELS:
        dr.create_label(parent["id"], name)
    dr.upload_assets(parent["id"], [(f"p{i}.png", rendered_page(seed=i)[0]) for i in range(2)])
    mv = dr.upload_model_version(dr.create_model("doclaynet")["id"], model_path(*DOCLAYNET))

    def preannotate(version_id: int) -> None:
        job = dr.launch_job("yolo-preannotation", version_id, model_version_id=mv["id"])
        run = wait_for(lambda: dr.get_run(job["runs"][0]["id"]), lambda r: r["finished_at"], 120)
        assert run["status"] == "succeeded", log_text(dr, run["id"])

    preannotate(parent["id"])
    once = dr.version_stats(parent["id"])["shapes"]
    child = dr.create_version(ds["id"], "copy", parent_version_id=parent["id"])
    assert dr.version_stats(child["id"])["shapes"] == once  # the boxes came along
    modal = httpx.get(f"{engine_server.url}/versions/{child['id']}/process",
                      params={"processing": "yolo-preannotation", "model_version": mv["id"]},
                      cookies={COOKIE: engine_server.token})  # fmt: skip
    assert "2 assets</strong> of this version already carry boxes" in modal.text
    preannotate(child["id"])
    assert dr.version_stats(child["id"])["shapes"] == once  # replaced, not doubled
    assert dr.version_stats(parent["id"])["shapes"] == once  # the parent's stay
    preannotate(parent["id"])  # and the other way round: the child's stay too
    assert dr.version_stats(child["id"])["shapes"] == once
    assert dr.version_stats(parent["id"])["shapes"] == once
