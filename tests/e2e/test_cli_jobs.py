"""`darkroom processing …` and `darkroom job …` against a real server with its scheduler."""

from __future__ import annotations

import json

from tests.helpers import image_bytes

BROKEN = """
def run(ctx):
    ctx.log.info("starting")
    raise RuntimeError("division by zero, on purpose")
"""
FIXED = "def run(ctx):\n    ctx.log.info('threshold %s', ctx.parameters['threshold'])\n"
SCHEMA = {"type": "object", "properties": {"threshold": {"type": "number", "default": 0.5}}}


def _version(cli, tmp_path):
    ds = cli("dataset", "create", "d", "--json").json()
    v = cli("version", "create", str(ds["id"]), "v1", "--json").json()
    (tmp_path / "a.jpg").write_bytes(image_bytes())
    cli("asset", "upload", str(v["id"]), str(tmp_path / "a.jpg"))
    return v


def test_launch_follow_prints_the_log_live_and_exits_0(cli, tmp_path):
    v = _version(cli, tmp_path)
    r = cli(
        "job", "launch", "dataset-stats", "--version", str(v["id"]), "-p", "page_size=1", "--follow"
    )
    assert r.code == 0, r.err
    assert "done: 1 assets" in r.out
    assert "succeeded" in r.out.splitlines()[-1]
    jobs = cli("job", "list", "--json").json()
    assert [(j["processing"]["name"], j["status"]) for j in jobs] == [
        ("dataset-stats", "succeeded")
    ]
    assert "dataset-stats" in cli("job", "list").out


def test_fail_fix_rerun_through_the_cli(cli, tmp_path):
    v = _version(cli, tmp_path)
    code = tmp_path / "proc.py"
    code.write_text(BROKEN)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    created = cli(
        "processing", "create", "mine", "--code", str(code), "--schema", str(schema), "--json"
    )
    assert created.code == 0, created.err
    assert "mine" in cli("processing", "list").out

    r = cli("job", "launch", "mine", "-v", str(v["id"]), "--follow")
    assert r.code == 1
    assert "Traceback" in r.out
    assert "RuntimeError: division by zero, on purpose" in r.out.splitlines()[-1]
    job_id = cli("job", "list", "--json").json()[0]["id"]

    code.write_text(FIXED)
    updated = cli("processing", "update", "mine", "--code", str(code), "--json").json()
    assert updated["latest_revision"]["number"] == 2
    r = cli("job", "rerun", str(job_id), "-p", "threshold=0.8", "--follow")
    assert r.code == 0, r.out + r.err
    assert "threshold 0.8" in r.out

    shown = cli("job", "show", str(job_id), "--json").json()
    assert [(x["attempt"], x["revision"], x["status"]) for x in shown["runs"]] == [
        (1, 1, "failed"),
        (2, 2, "succeeded"),
    ]
    human = cli("job", "show", str(job_id)).out
    assert "division by zero" in human
    first_log = cli("job", "logs", str(job_id), "--run", str(shown["runs"][0]["id"])).out
    assert "Traceback" in first_log
    assert "threshold 0.8" not in first_log


def test_cancel_and_bad_params(cli, tmp_path):
    v = _version(cli, tmp_path)
    r = cli("job", "launch", "dataset-stats", "-v", str(v["id"]), "-p", "page_size=zero")
    assert r.code == 1
    assert "parameters.page_size" in r.err
    job = cli(
        "job",
        "launch",
        "dataset-stats",
        "-v",
        str(v["id"]),
        "-p",
        "delay_s=30",
        "-p",
        "page_size=1",
        "--json",
    ).json()
    cancelled = cli("job", "cancel", str(job["id"]), "--json").json()
    assert cancelled["status"] in ("cancelled", "running")
    r = cli("job", "logs", str(job["id"]), "--follow")
    assert "cancelled" in r.out.splitlines()[-1]
    assert r.code == 1


def test_models_through_the_cli_tf_graph_with_label_map_and_a_conversion(cli, tmp_path):
    from tests.engine.test_tf_preannotation import PEDESTRIAN
    from tests.unit.test_inference_models import DOCLAYNET, model_path

    model = cli("model", "create", "people", "--json").json()
    (tmp_path / "label_map.pbtxt").write_text("item { id: 1 name: 'person' }\n")
    r = cli("model-version", "upload", str(model_path(*PEDESTRIAN)), "--model", str(model["id"]),
            "--label-map", str(tmp_path / "label_map.pbtxt"), "--json")  # fmt: skip
    assert r.code == 0, r.err
    assert (r.json()["format"], r.json()["labels"]) == ("tf-graph", ["person"])

    docs = cli("model", "create", "doclaynet", "--json").json()
    mv = cli("model-version", "upload", str(model_path(*DOCLAYNET)), "--model", str(docs["id"]),
             "--json").json()  # fmt: skip
    r = cli("job", "launch", "model-conversion", "--model-version", str(mv["id"]),
            "-p", "to=int8", "--follow")  # fmt: skip
    assert r.code == 0, r.err
    assert "comparing both models on 16 generated images" in r.out
    assert "new model version v1-int8" in r.out
    assert "succeeded" in r.out.splitlines()[-1]
