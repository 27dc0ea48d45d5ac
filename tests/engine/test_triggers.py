"""Triggers through real servers and workers: new assets (min_assets, debounce), a version a
person creates (launching a pipeline), each event fired exactly once with two schedulers on one
database, and across schedulers killed with -9."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from darkroom.client import Client
from tests.engine.conftest import ENGINE_ENV, wait_for
from tests.helpers import image_bytes
from tests.servers import Server, start_server, start_worker, stop_server

pytestmark = pytest.mark.slow

COUNTER = """
def run(ctx):
    print("assets here:", sum(len(page) for page in ctx.iter_asset_pages()), flush=True)
"""
SPLITTER = """
def run(ctx):
    ids = [a.id for page in ctx.iter_asset_pages() for a in page]
    ctx.create_output_version("half", asset_ids=ids[:1])
"""


@pytest.fixture
def api_only(tmp_path: Path) -> Iterator[Server]:
    """A server that schedules nothing: the tests bring their own schedulers (workers)."""
    server = start_server(tmp_path / "home", ENGINE_ENV, "--no-scheduler")
    yield server
    stop_server(server)


@pytest.fixture
def dr(api_only: Server) -> Iterator[Client]:
    with Client(api_only.url, api_only.token) as client:  # closed even when a test fails
        yield client


@pytest.fixture
def workers(api_only: Server) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for worker in started:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(30)


def _kill(worker: subprocess.Popen[str]) -> None:
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()


def _triggered(dr: Client, trigger_id: int) -> list[dict]:
    return [j for j in dr.list_jobs() if j.get("trigger_id") == trigger_id]


def test_new_assets_fire_once_per_batch_with_two_schedulers_and_across_kill_9(
    dr, api_only, workers
):
    v = dr.create_version(dr.create_dataset("incoming")["id"], "v1")
    dr.upload_assets(v["id"], [("old.jpg", image_bytes(seed=99))])  # there before: no event
    dr.create_processing(name="counter", type="custom",
                         source={"kind": "inline", "code": COUNTER})  # fmt: skip
    trigger = dr.create_trigger("on-new", "assets", processing="counter", version_id=v["id"],
                                min_assets=2, debounce_s=3600)  # fmt: skip
    workers += [start_worker(api_only), start_worker(api_only)]  # two schedulers
    dr.upload_assets(v["id"], [("w1.jpg", image_bytes(seed=50)), ("w2.jpg", image_bytes(seed=51))])
    wait_for(lambda: _triggered(dr, trigger["id"]), lambda js: len(js) == 1, 30, 0.05)  # both up
    time.sleep(1)
    latencies = []
    for i in range(1, 6):
        dr.upload_assets(v["id"], [(f"{i}-a.jpg", image_bytes(seed=2 * i))])
        time.sleep(0.3)  # one asset: under min_assets and long before the debounce
        assert len(_triggered(dr, trigger["id"])) == i  # the warm-up event's job, then each
        dr.upload_assets(v["id"], [(f"{i}-b.jpg", image_bytes(seed=2 * i + 1))])
        uploaded = time.monotonic()
        wait_for(lambda: _triggered(dr, trigger["id"]), lambda js, n=i + 1: len(js) >= n,
                 10, 0.02)  # fmt: skip
        latencies.append(time.monotonic() - uploaded)
    time.sleep(1)  # the other scheduler had every chance to fire them again
    fired = _triggered(dr, trigger["id"])
    assert len(fired) == 6, [j["id"] for j in fired]
    assert dr.get_trigger(trigger["id"])["fired"] == 6
    assert statistics.median(latencies) < 0.5, latencies  # upload answered -> job pending
    assert max(latencies) < 1.5, latencies

    for worker in workers:  # no scheduler left: the event waits in the database
        _kill(worker)
    dr.upload_assets(v["id"], [("c.jpg", image_bytes(seed=20)), ("d.jpg", image_bytes(seed=21))])
    time.sleep(1)
    assert len(_triggered(dr, trigger["id"])) == 6
    workers.append(start_worker(api_only))
    wait_for(lambda: _triggered(dr, trigger["id"]), lambda js: len(js) == 7, 30, 0.1)
    _kill(workers[-1])
    workers.append(start_worker(api_only))  # a restarted scheduler does not fire it again
    time.sleep(3)
    assert len(_triggered(dr, trigger["id"])) == 7
    job = _triggered(dr, trigger["id"])[0]
    run = wait_for(lambda: dr.get_run(job["runs"][0]["id"]), lambda r: r["finished_at"], 60, 0.2)
    assert run["status"] == "succeeded"


def test_debounce_fires_after_the_quiet_time_with_what_arrived(dr, api_only, workers):
    v = dr.create_version(dr.create_dataset("slow")["id"], "v1")
    dr.create_processing(name="counter", type="custom",
                         source={"kind": "inline", "code": COUNTER})  # fmt: skip
    trigger = dr.create_trigger("trickle", "assets", processing="counter", version_id=v["id"],
                                min_assets=100, debounce_s=1.5)  # fmt: skip
    workers.append(start_worker(api_only))
    dr.upload_assets(v["id"], [("a.jpg", image_bytes(seed=1))])
    first = time.monotonic()
    [job] = wait_for(lambda: _triggered(dr, trigger["id"]), lambda js: len(js) == 1, 60, 0.05)
    assert time.monotonic() - first >= 1.2  # not before the debounce
    assert job["target_version_id"] == v["id"]


def test_a_version_a_person_creates_launches_a_pipeline_and_one_a_processing_makes_does_not(
    dr, api_only, workers
):
    ds = dr.create_dataset("growing")
    v1 = dr.create_version(ds["id"], "v1")
    dr.upload_assets(v1["id"], [("a.jpg", image_bytes(seed=1)), ("b.jpg", image_bytes(seed=2))])
    for name, code in (("counter", COUNTER), ("splitter", SPLITTER)):
        dr.create_processing(name=name, type="custom", source={"kind": "inline", "code": code})
    dr.create_pipeline("count", [{"name": "count", "processing": "counter"}])
    trigger = dr.create_trigger("new-version", "version", pipeline="count", dataset_id=ds["id"])
    workers.append(start_worker(api_only))
    v2 = dr.create_version(ds["id"], "v2", parent_version_id=v1["id"])
    [run] = wait_for(lambda: dr.list_pipeline_runs("count"), lambda rs: len(rs) == 1, 60, 0.05)
    assert run["input_version_id"] == v2["id"]
    assert run["trigger_id"] == trigger["id"]
    wait_for(lambda: dr.get_pipeline_run(run["id"]), lambda r: r["status"] == "succeeded", 60)

    split = dr.launch_job("splitter", v2["id"])  # makes a version in the watched dataset
    wait_for(lambda: dr.get_job(split["id"]), lambda j: j["status"] == "succeeded", 60)
    time.sleep(1)
    assert len(dr.list_pipeline_runs("count")) == 1
