"""Pipelines through a real server and scheduler: steps are ordinary jobs, an output version
feeds the next step, a failed step blocks what depends on it, re-run from the failed step keeps
what succeeded, cancel stops every active step; the CLI drives the same from a YAML file."""

from __future__ import annotations

import httpx
import pytest

from tests.engine.conftest import SLEEP_SCHEMA, SLEEPER, log_text, wait_for

pytestmark = pytest.mark.slow

SPLITTER = """
def run(ctx):
    ids = [a.id for page in ctx.iter_asset_pages() for a in page]
    out = ctx.create_output_version("half", asset_ids=ids[:2])
    print("made version", out.id, flush=True)
"""
COUNTER = """
def run(ctx):
    print("assets here:", sum(len(page) for page in ctx.iter_asset_pages()), flush=True)
"""
BROKEN = """
def run(ctx):
    raise RuntimeError("the step is broken")
"""


def ended(dr, run_id: int, timeout_s: float = 90) -> dict:
    over = ("succeeded", "failed", "cancelled")
    return wait_for(lambda: dr.get_pipeline_run(run_id), lambda r: r["status"] in over,
                    timeout_s, 0.2)  # fmt: skip


def steps(run: dict) -> dict[str, dict]:
    return {s["name"]: s for s in run["steps"]}


def test_a_failed_step_blocks_its_dependents_and_a_rerun_from_it_keeps_the_rest(
    dr, version, make_processing, engine_server
):
    make_processing("splitter", SPLITTER)
    make_processing("counter", COUNTER)
    make_processing("checker", BROKEN)
    pipeline = dr.create_pipeline("grow", [
        {"name": "split", "processing": "splitter"},
        {"name": "check", "processing": "checker", "input": "split"},
        {"name": "count", "processing": "counter", "input": "check"},
        {"name": "side", "processing": "counter"},
    ])  # fmt: skip
    assert [s["name"] for s in pipeline["revision"]["steps"]] == ["split", "side", "check", "count"]
    run = dr.launch_pipeline("grow", version["id"])
    first = steps(run)
    assert first["split"]["status"] == "pending"
    assert first["side"]["status"] == "pending"
    assert first["check"]["status"] == "waiting"
    assert first["check"]["job_id"] is None

    run = ended(dr, run["id"])
    by = steps(run)
    assert run["status"] == "failed", run
    assert by["split"]["status"] == "succeeded", log_text(dr, by["split"]["run_id"])
    [half] = by["split"]["output_version_ids"]
    assert by["check"]["status"] == "failed"
    assert by["check"]["target_version_id"] == half  # the split's output, not the input
    assert by["count"]["status"] == "blocked"
    assert by["count"]["job_id"] is None
    assert by["side"]["status"] == "succeeded"
    assert "assets here: 5" in log_text(dr, by["side"]["run_id"])
    check_job = dr.get_job(by["check"]["job_id"])
    assert "the step is broken" in log_text(dr, check_job["runs"][0]["id"])  # a job like any

    dr.update_processing("checker", source={"kind": "inline", "code": COUNTER})  # the fix
    again = dr.rerun_pipeline_run(run["id"])
    assert steps(again)["check"]["status"] == "pending"  # the answer is what the rerun made
    run = ended(dr, run["id"])
    by = steps(run)
    assert run["status"] == "succeeded", run
    assert [r["status"] for r in dr.get_job(by["check"]["job_id"])["runs"]] == [
        "failed",
        "succeeded",
    ]
    assert len(dr.get_job(by["split"]["job_id"])["runs"]) == 1  # kept, not re-run
    assert by["split"]["output_version_ids"] == [half]
    assert by["count"]["target_version_id"] == half
    assert "assets here: 2" in log_text(dr, by["count"]["run_id"])

    from darkroom.web.auth import COOKIE

    dataset_id = dr.get_version(version["id"])["dataset_id"]
    page = httpx.get(f"{engine_server.url}/datasets/{dataset_id}",
                     cookies={COOKIE: engine_server.token})  # fmt: skip
    lineage = page.text
    graph = lineage[lineage.index('<svg id="lineage"') : lineage.index("</svg>")]
    assert f'data-node="{half}"' in graph  # the split's version, drawn from its source
    number = dr.get_job(by["split"]["job_id"])["number"]
    assert f"grow · splitter r1 · job #{number}" in graph
    assert f'href="/jobs/{by["split"]["job_id"]}"' in graph


def test_cancel_stops_the_active_steps_and_starts_no_other(dr, version, make_processing):
    make_processing("sleeper", SLEEPER, parameters_schema=SLEEP_SCHEMA)
    make_processing("counter", COUNTER)
    dr.create_pipeline("slow", [
        {"name": "wait", "processing": "sleeper", "parameters": {"seconds": 60}},
        {"name": "after", "processing": "counter", "input": "wait"},
    ])  # fmt: skip
    run = dr.launch_pipeline("slow", version["id"])
    wait_for(lambda: dr.get_pipeline_run(run["id"]),
             lambda r: steps(r)["wait"]["status"] == "running", 60, 0.2)  # fmt: skip
    dr.cancel_pipeline_run(run["id"])
    run = ended(dr, run["id"], 30)
    assert run["status"] == "cancelled", run
    assert steps(run)["wait"]["status"] == "cancelled"
    assert steps(run)["after"]["status"] == "blocked"
    assert run["cancelled_at"] is not None
