"""The runtime SDK as processing code sees it: decoded images, failures, outputs, lineage."""

from __future__ import annotations

from tests.engine.conftest import log_text, wait_for

ANNOTATOR = """
def run(ctx):
    total = sum(len(p) for p in ctx.iter_asset_pages())
    done = 0
    for batch in ctx.iter_assets(batch_size=2, prefetch=2):
        rows = []
        for item in batch:
            h, w, channels = item.image.shape
            assert channels == 3 and (w, h) == (item.asset.width, item.asset.height)
            if item.id % 2:
                ctx.record_failure(f"asset {item.id}", ValueError("odd id"))
                continue
            rows.append({"asset_id": item.id, "shapes": [
                {"kind": "rectangle", "label": "cat", "bbox": [1, 1, 10, 10], "score": 0.9}]})
        if rows:
            ctx.add_annotations(rows)
        done += len(batch)
        ctx.progress(done, total)
    out = ctx.create_output_version(f"{ctx.input_version.name}-out")
    ctx.log.info("output version %s", out.id)
"""

SCHEMA = {"type": "object", "properties": {"max_failures": {"type": "integer", "default": 10}}}


def test_sdk_inputs_outputs_and_lineage(dr, version, make_processing):
    make_processing("annotator", ANNOTATOR, parameters_schema=SCHEMA)
    job = dr.launch_job("annotator", version["id"])
    run = wait_for(lambda: dr.get_run(job["runs"][0]["id"]), lambda r: r["finished_at"] is not None)
    log = log_text(dr, run["id"])
    assert run["status"] == "succeeded", log
    assert run["progress"] == {"done": 5, "total": 5}
    assert "3 items failed" in log  # assets 1, 3, 5
    annotated = dr.list_assets(version["id"], annotated=True)["items"]
    assert [a["id"] for a in annotated] == [2, 4]
    anns = dr.list_annotations(2)
    assert [(a["author_kind"], a["author_id"]) for a in anns] == [("run", run["id"])]
    versions = dr.list_versions(version["dataset_id"])
    out = next(v for v in versions if v["name"] == "v1-out")
    assert out["parent_version_id"] == version["id"]
    assert out["produced_by_job_id"] == job["id"]
    assert dr.version_stats(out["id"])["shapes"] == 2  # the copy carries the run's shapes


def test_max_failures_ends_the_run(dr, version, make_processing):
    make_processing("annotator", ANNOTATOR, parameters_schema=SCHEMA)
    job = dr.launch_job("annotator", version["id"], parameters={"max_failures": 1})
    run = wait_for(lambda: dr.get_run(job["runs"][0]["id"]), lambda r: r["finished_at"] is not None)
    assert run["status"] == "failed"
    assert run["error_summary"] == (
        "darkroom.runtime.context.TooManyFailures: 2 failures, more than max_failures=1"
    )
