"""The run contract through real servers: batches past the server's limit, a server restart in
the middle of a run, and a re-run resumed after its predecessor was killed halfway."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from urllib.parse import urlparse

from darkroom.client import Client
from tests.engine.conftest import ENGINE_ENV, log_text, runtime_pid, wait_for
from tests.helpers import image_bytes
from tests.servers import DARKROOM, start_server, start_worker, stop_server

COUNTER = """
import os

def run(ctx):
    n = sum(len(b) for b in ctx.iter_assets(batch_size=ctx.parameters["batch_size"]))
    ctx.log.info("limit %d: loaded %d, failures %d", ctx.limits.max_batch_images, n, ctx.failures)
    ctx.log.info("linked: %s", " ".join(sorted(os.listdir(os.environ["DARKROOM_BLOBS"]))))
"""

# One asset per request, with a pause: slow enough to be interrupted in the middle.
SLOW_ANNOTATOR = """
import time

def run(ctx):
    ctx.clear_previous_runs_annotations()
    assets = [a for page in ctx.iter_asset_pages() for a in page]
    for i, asset in enumerate(assets, 1):
        shape = {"kind": "rectangle", "label": "cat", "bbox": [1, 1, 5, 5]}
        ctx.add_annotations([{"asset_id": asset.id, "shapes": [shape]}])
        ctx.progress(i, len(assets), force=True)
        ctx.log.info("annotated %d of %d", i, len(assets))
        time.sleep(ctx.parameters["pause_s"])
"""
PAUSE_SCHEMA = {"type": "object", "properties": {"pause_s": {"type": "number", "default": 0.2}}}


def _version(dr: Client, n: int) -> dict:
    v = dr.create_version(dr.create_dataset("contract")["id"], "v1")
    dr.create_label(v["id"], "cat")
    for start in range(0, n, 35):
        batch = range(start, min(n, start + 35))
        dr.upload_assets(v["id"], [(f"{i}.jpg", image_bytes(32, 24, seed=i)) for i in batch])
    return v


def _finished(dr: Client, run_id: int, timeout_s: float = 60) -> dict:
    return wait_for(lambda: dr.get_run(run_id), lambda r: r["finished_at"] is not None, timeout_s)


def test_a_batch_larger_than_the_servers_limit_loses_no_image(dr: Client) -> None:
    """Also: the images are read from hard links to the input version's blobs, and no other
    blob is linked."""
    v = _version(dr, 70)
    other = dr.create_version(v["dataset_id"], "other")
    secret = dr.upload_assets(other["id"], [("secret.jpg", image_bytes(40, 30, seed=999))])[0]
    dr.create_processing(
        name="counter", type="custom", source={"kind": "inline", "code": COUNTER},
        parameters_schema={"type": "object", "properties": {"batch_size": {"type": "integer"}}},
    )  # fmt: skip
    run = _finished(
        dr, dr.launch_job("counter", v["id"], parameters={"batch_size": 65})["runs"][0]["id"]
    )
    log = log_text(dr, run["id"])
    assert run["status"] == "succeeded", log
    assert "limit 64: loaded 70, failures 0" in log
    assert "data path: read 70 in" in log
    assert "download" not in log.split("data path:")[1]
    linked = log.split("linked: ")[1].split()[:70]
    assert sorted(linked) == sorted({a["blob_sha256"] for a in dr.iter_assets(v["id"])})
    assert secret["blob_sha256"] not in log


def test_a_server_restart_mid_run_leaves_the_run_succeeding(tmp_path: Path) -> None:
    """The runs live in a worker; the API server they write to stops and comes back on the
    same port. Their requests are retried, keyed writes are not repeated."""
    home = tmp_path / "home"
    server = start_server(home, ENGINE_ENV, "--no-scheduler")
    port = urlparse(server.url).port
    worker = start_worker(server, ENGINE_ENV)
    try:
        with Client(server.url, server.token) as dr:
            v = _version(dr, 20)
            dr.create_processing(
                name="slow", type="custom", source={"kind": "inline", "code": SLOW_ANNOTATOR},
                parameters_schema=PAUSE_SCHEMA,
            )  # fmt: skip
            run_id = dr.launch_job("slow", v["id"])["runs"][0]["id"]
            wait_for(lambda: log_text(dr, run_id), lambda t: "annotated 3 of 20" in t, 60)
        stop_server(server)
        server = start_server(home, ENGINE_ENV, "--no-scheduler", port=port)
        with Client(server.url, server.token) as dr:
            run = _finished(dr, run_id)
            log = log_text(dr, run_id)
            assert run["status"] == "succeeded", log
            assert "retrying in" in log  # the restart did hit the run's requests
            stats = dr.version_stats(v["id"])
            assert (stats["shapes"], stats["annotated_assets"]) == (20, 20)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        stop_server(server)


def test_a_resumed_rerun_skips_what_the_killed_run_finished(engine_server, dr: Client) -> None:
    v = _version(dr, 20)
    dr.create_processing(
        name="slow", type="custom", source={"kind": "inline", "code": SLOW_ANNOTATOR},
        parameters_schema=PAUSE_SCHEMA,
    )  # fmt: skip
    job = dr.launch_job("slow", v["id"])
    first = job["runs"][0]["id"]
    wait_for(lambda: log_text(dr, first), lambda t: "annotated 8 of 20" in t, 60)
    os.kill(runtime_pid(first, engine_server.instance), signal.SIGKILL)
    killed = _finished(dr, first)
    assert killed["status"] == "failed"
    done_before = dr.version_stats(v["id"])["annotated_assets"]
    assert 8 <= done_before < 20

    follow = subprocess.run(
        [DARKROOM, "job", "rerun", str(job["id"]), "--resume", "--follow"],
        env=engine_server.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert follow.returncode == 0, follow.stdout + follow.stderr
    assert f"resuming: {done_before} assets finished by earlier runs are skipped" in follow.stdout
    assert f"annotated {20 - done_before} of {20 - done_before}" in follow.stdout
    stats = dr.version_stats(v["id"])
    assert (stats["shapes"], stats["annotated_assets"]) == (20, 20)  # each asset once

    again = dr.rerun_job(job["id"])  # not resumed: starts clean and does it all
    assert _finished(dr, again["id"])["status"] == "succeeded"
    assert "annotated 20 of 20" in log_text(dr, again["id"])
    assert dr.version_stats(v["id"])["shapes"] == 20


QUEUE_THEN_FAIL = """
def run(ctx):
    ids = [a.id for page in ctx.iter_asset_pages() for a in page]
    shape = {"kind": "rectangle", "label": "cat", "bbox": [1, 1, 5, 5]}
    for asset_id in ids[:3]:
        ctx.queue_annotations([{"asset_id": asset_id, "shapes": [shape]}])
    raise ValueError("bad data after three images")
"""


def test_writes_queued_before_a_failure_are_kept(dr: Client) -> None:
    v = _version(dr, 5)
    dr.create_processing(
        name="fails", type="custom", source={"kind": "inline", "code": QUEUE_THEN_FAIL}
    )
    run = _finished(dr, dr.launch_job("fails", v["id"])["runs"][0]["id"])
    assert run["status"] == "failed"
    assert run["error_summary"] == "ValueError: bad data after three images"
    assert dr.version_stats(v["id"])["annotated_assets"] == 3
