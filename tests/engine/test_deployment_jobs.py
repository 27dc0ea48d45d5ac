"""Processings on deployments, run by a real `darkroom serve`: the built-in `deployment-metrics`
and a user's own metric read the served predictions through the runtime SDK; the CLI drives
a deployment end to end (create, predict, log, rollout, launch, stop)."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter

import pytest

from darkroom.client import ApiError
from tests.engine.conftest import log_text, wait_for
from tests.helpers import image_bytes, rendered_page
from tests.servers import DARKROOM
from tests.unit.test_inference_models import DOCLAYNET, model_path

TITLE_RATE = """
def run(ctx):
    n = titled = 0
    for p in ctx.iter_predictions(page_size=2):
        n += 1
        titled += any(s["label"] == ctx.parameters["label"] for s in p.shapes)
    seen = {"n": n, "deployment": ctx.deployment.name}
    ctx.record_metrics({"title_rate": titled / n, "seen": seen})
"""


def _served(dr, name: str = "pages") -> tuple[dict, dict]:
    model = dr.create_model("doclaynet")
    mv = dr.upload_model_version(model["id"], model_path(*DOCLAYNET), name="yolov8n")
    d = dr.create_deployment(name, mv["id"], settings={"sampling_rate": 1})
    return mv, d


def _finished(dr, run_id: int) -> dict:
    return wait_for(lambda: dr.get_run(run_id), lambda r: r["finished_at"], 120)


@pytest.mark.slow
def test_metrics_processings_read_the_served_predictions(dr, make_processing):
    mv, d = _served(dr)
    answers = [dr.predict(d["id"], rendered_page(seed=i)[0]) for i in range(3)]
    boxes = Counter(s["label"] for a in answers for s in a["shapes"])
    scores = [s["score"] for a in answers for s in a["shapes"]]
    # a reference version with scored shapes (as a pre-annotation writes them)
    ds = dr.create_dataset("reference")
    ref = dr.create_version(ds["id"], "v1")
    for name in ("Text", "Title"):
        dr.create_label(ref["id"], name)
    [asset] = dr.upload_assets(ref["id"], [("a.jpg", image_bytes())])
    dr.add_annotations(asset["id"], [
        {"kind": "rectangle", "label": "Text", "bbox": [1, 1, 9, 9], "score": 0.9},
        {"kind": "rectangle", "label": "Title", "bbox": [2, 2, 9, 9], "score": 0.4},
    ])  # fmt: skip

    job = dr.launch_job("deployment-metrics", ref["id"], target_deployment_id=d["name"])
    assert job["target_deployment_id"] == d["id"]
    assert job["window_end"]
    run = _finished(dr, job["runs"][0]["id"])
    assert run["status"] == "succeeded", log_text(dr, run["id"])
    figures = dr._json("GET", f"/runs/{run['id']}/metrics")
    assert figures["requests"] == 3
    assert figures["boxes_per_label"] == dict(boxes)
    assert sum(figures["score_histogram"]["counts"]) == len(scores)
    totals = sorted(a["latency_ms"]["total"] for a in answers)
    assert figures["latency_p50_ms"] == pytest.approx(totals[1], rel=1e-6)
    assert figures["requests_per_model_version"] == {str(mv["id"]): 3}
    assert figures["reference_boxes_per_label"] == {"Text": 1, "Title": 1}
    assert figures["label_psi"] > 0
    assert figures["score_psi"] > 0
    assert "requests: 3" in log_text(dr, run["id"])

    # a user's own metric: fails first, is fixed, re-run; both runs are kept
    proc = make_processing("title-rate", TITLE_RATE.replace('ctx.parameters["label"]', "LABEL"),
                           target="deployment")  # fmt: skip
    job = dr.launch_job(proc["name"], None, target_deployment_id=d["id"])
    first = _finished(dr, job["runs"][0]["id"])
    assert first["status"] == "failed"
    assert "NameError" in first["error_summary"]
    dr.update_processing(proc["name"], source={"kind": "inline", "code": TITLE_RATE},
                         parameters_schema={"type": "object", "properties": {
                             "label": {"type": "string", "default": "Title"}}})  # fmt: skip
    second = _finished(dr, dr.rerun_job(job["id"])["id"])
    assert second["status"] == "succeeded", log_text(dr, second["id"])
    titled = sum(any(s["label"] == "Title" for s in a["shapes"]) for a in answers)
    assert dr._json("GET", f"/runs/{second['id']}/metrics") == {
        "seen": {"n": 3, "deployment": "pages"},
        "title_rate": pytest.approx(titled / 3),
    }
    assert [r["status"] for r in dr.get_job(job["id"])["runs"]] == ["failed", "succeeded"]
    series = dr._json("GET", f"/deployments/{d['id']}/metrics", params={"key": "title_rate"})
    assert [p["value"] for p in series] == [pytest.approx(titled / 3)]

    # deployment-evaluation: served boxes against the reviewed ones
    reviewed = dr.create_version(ds["id"], "reviewed")
    ids = [a["id"] for a in answers[:2]]
    dr._json("POST", f"/deployments/{d['id']}/predictions/review",
             json={"ids": ids[:1], "status": "accepted"})  # fmt: skip
    dr._json("POST", f"/deployments/{d['id']}/predictions/review",
             json={"ids": [answers[2]["id"]], "status": "rejected"})  # fmt: skip
    sent = dr._json("POST", f"/deployments/{d['id']}/predictions/send",
                    json={"ids": ids, "version_id": reviewed["id"]})  # fmt: skip
    # the second is fixed: a person keeps only its first box, moved far off
    [box, *_] = answers[1]["shapes"]
    moved = {**box, "bbox": [box["bbox"][0] + 400, box["bbox"][1] + 400, 20, 20]}
    moved.pop("score")
    dr.replace_annotations(sent[1]["id"], [moved])
    job = dr.launch_job("deployment-evaluation", reviewed["id"], target_deployment_id=d["id"])
    run = _finished(dr, job["runs"][0]["id"])
    assert run["status"] == "succeeded", log_text(dr, run["id"])
    evaluation = dr._json("GET", f"/runs/{run['id']}/metrics")
    assert evaluation["reviewed_images"] == 2
    assert evaluation["ground_truth"] == len(answers[0]["shapes"]) + 1
    assert evaluation["served_boxes"] == len(answers[0]["shapes"]) + len(answers[1]["shapes"])
    assert evaluation["reviews"] == {"accepted": 1, "fixed": 1, "rejected": 1}
    assert 0.3 < evaluation["map50"] < 1.0  # the accepted page's boxes match, the fixed one's not
    no_reference = dr.launch_job("deployment-evaluation", None, target_deployment_id=d["id"])
    failed = _finished(dr, no_reference["runs"][0]["id"])
    assert failed["status"] == "failed"
    assert "reference version" in failed["error_summary"]

    # a window before the predictions reads none
    early = dr.launch_job("deployment-metrics", None, target_deployment_id=d["id"],
                          window=(None, "2001-01-01T00:00:00+00:00"))  # fmt: skip
    run = _finished(dr, early["runs"][0]["id"])
    assert run["status"] == "succeeded"
    assert dr._json("GET", f"/runs/{run['id']}/metrics")["requests"] == 0
    # refused launches name what is wrong
    with pytest.raises(ApiError, match="runs on a deployment: give target_deployment_id"):
        dr.launch_job("deployment-metrics", None)
    with pytest.raises(ApiError, match="does not run on a deployment"):
        dr.launch_job("smart-version", ref["id"], target_deployment_id=d["id"])
    with pytest.raises(ApiError) as refused:
        dr.launch_job("deployment-metrics", None, target_deployment_id=d["id"],
                      window=("2026-01-01T00:00:00", None))  # fmt: skip
    assert refused.value.status == 422  # a time without its zone


@pytest.mark.slow
def test_the_cli_drives_a_deployment(engine_server, dr, tmp_path):
    model = dr.create_model("doclaynet")
    mv = dr.upload_model_version(model["id"], model_path(*DOCLAYNET), name="yolov8n")
    page = tmp_path / "page.png"
    page.write_bytes(rendered_page()[0])

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([DARKROOM, *args], env=engine_server.env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    created = json.loads(cli("deployment", "create", "docs", "--model-version", str(mv["id"]),
                             "--set", 'labels=["Text"]', "--set", "max_batch=4",
                             "--json").stdout)  # fmt: skip
    assert created["settings"]["labels"] == ["Text"]
    assert created["settings"]["max_batch"] == 4
    out = cli("deployment", "predict", "docs", str(page)).stdout
    assert "Text" in out
    assert "prediction" in out
    answer = json.loads(cli("deployment", "predict", "docs", str(page), "--json").stdout)
    log = json.loads(cli("deployment", "predictions", "docs", "--json").stdout)
    assert log[0]["id"] == answer["id"]
    assert len(log) == 2
    token = json.loads(cli("deployment", "token", "docs", "--json").stdout)["token"]
    with_token = subprocess.run(
        [DARKROOM, "--token", token, "deployment", "predict", "docs", str(page), "--json"],
        env=engine_server.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert with_token.returncode == 0, with_token.stderr
    denied = subprocess.run(
        [DARKROOM, "--token", token, "dataset", "list"], env=engine_server.env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert denied.returncode != 0
    assert "predict" in denied.stdout + denied.stderr
    cli("deployment", "update", "docs", "--set", "confidence_threshold=0.5")
    shown = cli("deployment", "show", "docs").stdout
    assert "revisions" in shown
    assert "requests" in shown
    listed = json.loads(cli("deployment", "list", "--json").stdout)
    assert [d["revision"]["number"] for d in listed] == [2]
    followed = cli(
        "job", "launch", "deployment-metrics", "--deployment", "docs", "--follow", "--json"
    ).stdout  # fmt: skip (exit 0: the run succeeded)
    assert any("requests: 3" in json.loads(line)["text"] for line in followed.splitlines())
    stopped = json.loads(cli("deployment", "stop", "docs", "--json").stdout)
    assert stopped["status"] == "stopped"
    deadline = time.monotonic() + 15
    while dr.get_deployment("docs")["replicas"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
