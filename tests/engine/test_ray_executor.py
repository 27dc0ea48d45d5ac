"""Runs on a real local Ray cluster: `darkroom worker --executor ray` submits each run as a Ray
job, the run executes sandboxed on the node and ships its log over HTTP; failure with its
traceback, fix and re-run, cancel, pre-annotation, and a head killed mid-run (`lost`)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from darkroom.client import ApiError, Client
from tests.engine.conftest import ENGINE_ENV, SLEEP_SCHEMA, SLEEPER, log_text, wait_for
from tests.helpers import rendered_page
from tests.ray_cluster import RayHead, _processes, start_head, stop_head
from tests.servers import Server, start_server, start_worker, stop_server
from tests.unit.test_inference_models import DOCLAYNET, FALL, model_path

pytestmark = [pytest.mark.ray, pytest.mark.slow]
RUNS = int(os.environ.get("DARKROOM_TEST_RAY_RUNS", "30"))

BROKEN = """
def run(ctx):
    print("reading the columns", flush=True)
    columns = {"width": 1}
    return columns["height"]
"""
FIXED = """
def run(ctx):
    print("reading the columns", flush=True)
    ctx.log.info("height defaults to %d", 1)
"""


@pytest.fixture(scope="module")
def ray_head() -> Iterator[RayHead]:
    """One head per test process that runs these tests (xdist spreads them: each worker that
    gets one starts its own). Its temp dir is short: Ray's Unix sockets live under it, and a
    socket path may not exceed 107 bytes."""
    temp_dir = Path(tempfile.mkdtemp(prefix="dr-ray-", dir="/tmp"))
    head = start_head(temp_dir)
    yield head
    stop_head(head)
    shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def ray_workers() -> list[subprocess.Popen[str]]:
    return []


@pytest.fixture
def ray_server(
    tmp_path: Path, ray_head: RayHead, ray_workers: list[subprocess.Popen[str]]
) -> Iterator[Server]:
    """A server without its own scheduler, and one worker whose runs go to Ray."""
    env = {**ENGINE_ENV, "DARKROOM_EXECUTOR": "ray", "DARKROOM_RAY_ADDRESS": ray_head.address,
           "DARKROOM_RAY_SERVE_URL": ray_head.serve_url}  # fmt: skip
    server = start_server(tmp_path / "home", env, "--no-scheduler")
    ray_workers.append(start_worker(server))
    yield server
    for worker in ray_workers:
        worker.terminate()
        worker.wait(30)
    stop_server(server)


@pytest.fixture
def dr(ray_server: Server) -> Iterator[Client]:
    with Client(ray_server.url, ray_server.token) as client:
        yield client


def finished(dr: Client, run_id: int, timeout_s: float = 120) -> dict:
    return wait_for(lambda: dr.get_run(run_id), lambda r: r["finished_at"], timeout_s, 0.1)


def test_fail_fix_rerun_on_ray(dr, version):
    proc = dr.create_processing(name="columns", type="custom",
                                source={"kind": "inline", "code": BROKEN})  # fmt: skip
    job = dr.launch_job(proc["id"], version["id"])
    first = finished(dr, job["runs"][0]["id"])
    log = log_text(dr, first["id"])
    assert first["status"] == "failed", log
    assert first["error_summary"] == "KeyError: 'height'"
    assert "submitted to Ray at http://127.0.0.1:" in log
    assert "on Ray node" in log
    assert "reading the columns" in log
    assert 'return columns["height"]' in log  # the trace quotes the processing's own line

    dr.update_processing(proc["id"], source={"kind": "inline", "code": FIXED})
    second = dr.rerun_job(job["id"])
    second = finished(dr, second["id"])
    assert second["status"] == "succeeded", log_text(dr, second["id"])
    assert "height defaults to 1" in log_text(dr, second["id"])
    runs = dr.get_job(job["id"])["runs"]
    assert [r["status"] for r in runs] == ["failed", "succeeded"]  # both kept


def test_a_bundle_gets_its_environment_on_the_node(dr, version, tmp_path):
    from darkroom.bundles.archive import pack_dir
    from tests.e2e.test_bundles import bundle

    folder = bundle(tmp_path, "bundled", "import sys\n\ndef run(ctx):\n"
                    "    print('bundle python', sys.prefix, flush=True)\n")  # fmt: skip
    dr.push_bundle(pack_dir(folder).archive)
    job = dr.launch_job("bundled", version["id"])
    run = finished(dr, job["runs"][0]["id"], 180)
    log = log_text(dr, run["id"])
    assert run["status"] == "succeeded", log
    assert "on Ray node" in log
    assert "bundle python /run/darkroom/env" in log  # its own environment, in the sandbox


def test_cancel_stops_the_ray_job(dr, version, make_processing):
    proc = make_processing("sleeper", SLEEPER, parameters_schema=SLEEP_SCHEMA)
    job = dr.launch_job(proc["id"], version["id"], parameters={"seconds": 60})
    run_id = job["runs"][0]["id"]
    wait_for(lambda: log_text(dr, run_id), lambda text: "pid " in text, 60, 0.1)
    asked = time.monotonic()
    dr.cancel_run(run_id)
    run = finished(dr, run_id, 30)
    assert run["status"] == "cancelled", log_text(dr, run_id)
    assert time.monotonic() - asked < 15


def test_yolo_preannotation_on_ray(dr):
    v = dr.create_version(dr.create_dataset("docs")["id"], "pages")
    dr.create_label(v["id"], "Text")
    [page] = dr.upload_assets(v["id"], [("p.png", rendered_page(seed=1)[0])])
    mv = dr.upload_model_version(dr.create_model("doclaynet")["id"], model_path(*DOCLAYNET))
    job = dr.launch_job("yolo-preannotation", v["id"], model_version_id=mv["id"])
    run = finished(dr, job["runs"][0]["id"])
    assert run["status"] == "succeeded", log_text(dr, run["id"])
    [ann] = [a for a in dr.list_annotations(page["id"]) if a["author_kind"] == "run"]
    assert any(s["label"] == "Text" for s in ann["shapes"])


def _bwrap_replicas(hostname: str) -> list[int]:
    """Sandboxed replica processes (bwrap) started for that deployment, on this host."""
    found = []
    for pid, cmdline, _sid in _processes():
        argv = cmdline.split(b"\0")
        if argv and argv[0].endswith(b"bwrap") and hostname.encode() in argv:
            found.append(pid)
    return found


def _http(server: Server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})


def test_a_deployment_serves_as_a_ray_serve_application(dr, ray_server, ray_head):
    """DARKROOM_EXECUTOR=ray: a deployment is a Serve application on the cluster whose replica
    runs the sandboxed replica process; predict goes through Serve, a rollout is Serve's rolling
    update, stopping removes the application and its processes, and the replica's token opens
    the weights and nothing else."""
    mv = dr.upload_model_version(dr.create_model("doclaynet")["id"], model_path(*DOCLAYNET))
    d = dr.create_deployment("pages", mv["id"], settings={"replicas": 1})
    d = wait_for(lambda: dr.get_deployment(d["id"]), lambda x: x["status"] != "starting", 180, 0.5)
    assert d["status"] == "serving", d
    app_name = f"darkroom-{ray_server.instance}-deployment-{d['id']}"
    apps = httpx.get(f"{ray_head.address}/api/serve/applications/").json()["applications"]
    assert apps[app_name]["status"] == "RUNNING"
    assert apps[app_name]["route_prefix"] == f"/{app_name}"
    [replica] = d["replicas"]
    assert replica["state"] == "ready"
    assert replica["revision"] == 1
    hostname = f"darkroom-{ray_server.instance}-deployment-{d['id']}"
    assert _bwrap_replicas(hostname), "the Serve replica runs no sandboxed replica process"

    page, _ = rendered_page(seed=3)
    answer = dr.predict("pages", page)
    assert answer["revision"] == 1
    assert answer["model_version_id"] == mv["id"]
    assert any(s["label"] == "Text" and s["score"] > 0.25 for s in answer["shapes"]), answer
    assert [p["id"] for p in dr.list_predictions("pages")["items"]] == [answer["id"]]  # logged

    token = apps[app_name]["deployed_app_config"]["args"]["token"]
    with _http(ray_server, token) as replica_client:
        weights = replica_client.get(f"/api/v1/deployments/{d['id']}/revisions/1/weights")
        assert weights.status_code == 200
        assert weights.content == model_path(*DOCLAYNET).read_bytes()
        for path in ("/api/v1/deployments", f"/api/v1/model-versions/{mv['id']}/weights"):
            assert replica_client.get(path).status_code == 403, path
        refused = replica_client.post(f"/api/v1/deployments/{d['id']}/predict", content=page)
        assert refused.status_code == 403
    client_token = dr.create_deployment_token("pages")["token"]
    with _http(ray_server, client_token) as client:
        assert client.get(f"/api/v1/deployments/{d['id']}/revisions/1/weights").status_code == 403

    dr.update_deployment("pages", settings={"confidence_threshold": 0.5})  # a rolling update
    rolled = wait_for(lambda: dr.predict("pages", page), lambda a: a["revision"] == 2, 180, 0.5)
    assert all(s["score"] >= 0.5 for s in rolled["shapes"]), rolled
    wait_for(lambda: dr.get_deployment("pages"), lambda x: x["status"] == "serving", 60, 0.5)

    dr.stop_deployment("pages")
    wait_for(lambda: httpx.get(f"{ray_head.address}/api/serve/applications/").json(),
             lambda got: app_name not in (got.get("applications") or {}), 60, 0.5)  # fmt: skip
    wait_for(lambda: _bwrap_replicas(hostname), lambda pids: not pids, 30, 0.5)
    with _http(ray_server, token) as replica_client:  # revoked with its application
        gone = replica_client.get(f"/api/v1/deployments/{d['id']}/revisions/1/weights")
        assert gone.status_code == 401


def test_a_model_that_does_not_load_on_ray_serve_fails_the_deployment_saying_why(dr, ray_server):
    mv = dr.upload_model_version(dr.create_model("fall")["id"], model_path(*FALL))
    sha = mv["weights_sha256"]
    (ray_server.home / "blobs" / sha[:2] / sha[2:4] / sha).write_bytes(b"rotten weights")
    d = dr.create_deployment("falls", mv["id"])
    d = wait_for(lambda: dr.get_deployment(d["id"]), lambda x: x["status"] != "starting", 180, 0.5)
    assert d["status"] == "failed", d
    assert "the model does not load" in d["status_reason"], d
    with pytest.raises(ApiError) as refused:
        dr.predict("falls", rendered_page(seed=4)[0])
    assert (refused.value.status, refused.value.code) == (409, "deployment_failed")


def test_head_killed_mid_run_is_lost_and_a_rerun_works(dr, version, make_processing, ray_head):
    proc = make_processing("sleeper", SLEEPER, parameters_schema=SLEEP_SCHEMA)
    job = dr.launch_job(proc["id"], version["id"], parameters={"seconds": 60})
    run_id = job["runs"][0]["id"]
    wait_for(lambda: log_text(dr, run_id), lambda text: "pid " in text, 60, 0.1)
    stop_head(ray_head)
    run = finished(dr, run_id, 60)
    assert run["status"] == "failed"
    assert run["failure_reason"] == "lost", run
    assert run["error_summary"].startswith("lost: ")
    restarted = start_head(ray_head.temp_dir, ray_head.ports)  # same address, no job history
    ray_head.sessions = restarted.sessions
    again = dr.rerun_job(job["id"], parameters={"seconds": 0.5})
    again = finished(dr, again["id"], 120)
    assert again["status"] == "succeeded", log_text(dr, again["id"])


def test_a_run_asking_for_a_gpu_waits_in_rays_queue_saying_why(dr, version):
    proc = dr.create_processing(name="on-gpu", type="custom", resources={"gpus": 1},
                                source={"kind": "inline", "code": FIXED}, timeout_s=3)  # fmt: skip
    job = dr.launch_job(proc["id"], version["id"])
    run_id = job["runs"][0]["id"]
    waiting = "queued on Ray: waiting for resources (cpus=1, gpus=1)"
    wait_for(lambda: log_text(dr, run_id), lambda text: waiting in text, 30, 0.2)
    time.sleep(2)  # past its 3 s timeout: queued time is not running time
    assert dr.get_run(run_id)["finished_at"] is None
    dr.cancel_run(run_id)
    assert finished(dr, run_id, 30)["status"] == "cancelled"


@pytest.mark.postgres
def test_postgres_s3_ray_and_local_workers_share_runs_each_once(
    tmp_path, ray_head, pg_database, s3_bucket, s3_options
):
    """The product on its scaled-out stack: PostgreSQL, blobs on S3 (moto), two Ray workers
    and two local ones on one queue. A pre-annotation runs on Ray (weights and images come from
    S3 through the API), then every recorder run is executed exactly once, by both kinds."""
    from tests.conftest import _truncate_all
    from tests.engine.test_recovery import RECORDER

    _truncate_all(pg_database)
    env = {**ENGINE_ENV, "DARKROOM_DATABASE_URL": pg_database,
           "DARKROOM_STORAGE_URL": f"s3://{s3_bucket}/blobs",
           "DARKROOM_STORAGE_OPTIONS": json.dumps(s3_options),
           "DARKROOM_SANDBOX": "none",  # the recorder appends to a file of the test's
           "DARKROOM_RAY_ADDRESS": ray_head.address}  # fmt: skip
    server = start_server(tmp_path / "home", env, "--no-scheduler")
    workers = [start_worker(server, {"DARKROOM_EXECUTOR": "ray"}) for _ in range(2)]
    record = tmp_path / "executions.txt"
    try:
        with Client(server.url, server.token) as dr:
            v = dr.create_version(dr.create_dataset("docs")["id"], "pages")
            dr.create_label(v["id"], "Text")
            [page] = dr.upload_assets(v["id"], [("p.png", rendered_page(seed=2)[0])])
            mv = dr.upload_model_version(dr.create_model("doclaynet")["id"],
                                         model_path(*DOCLAYNET))  # fmt: skip
            pre = dr.launch_job("yolo-preannotation", v["id"], model_version_id=mv["id"])
            run = finished(dr, pre["runs"][0]["id"])
            assert run["status"] == "succeeded", log_text(dr, run["id"])
            assert "submitted to Ray" in log_text(dr, run["id"])
            assert [a for a in dr.list_annotations(page["id"]) if a["author_kind"] == "run"]

            workers += [start_worker(server, {"DARKROOM_EXECUTOR": "local"}) for _ in range(2)]
            dr.create_processing(
                name="recorder", type="custom", source={"kind": "inline", "code": RECORDER},
                parameters_schema={"type": "object", "properties": {"path": {"type": "string"}}},
            )  # fmt: skip
            jobs = [dr.launch_job("recorder", v["id"], parameters={"path": str(record)})
                    for _ in range(RUNS)]  # fmt: skip
            wait_for(lambda: dr.list_jobs(status="succeeded"), lambda js: len(js) == RUNS + 1,
                     timeout_s=300, every_s=1)  # fmt: skip
            executed = record.read_text().split()
            assert sorted(map(int, executed)) == sorted(j["runs"][0]["id"] for j in jobs)
            on_ray = [j for j in jobs if "submitted to Ray" in log_text(dr, j["runs"][0]["id"])]
            assert 0 < len(on_ray) < RUNS, len(on_ray)  # both kinds of worker took some
    finally:
        for w in workers:
            w.terminate()
            w.wait(30)
        stop_server(server)


def test_a_run_whose_worker_died_is_lost_and_its_ray_job_stops(
    ray_head, ray_server, ray_workers, dr, version, make_processing
):
    """The local executor's lease semantics on Ray: the worker is killed, a new one fails its
    run as lost one lease later, and the node, told so by the server, stops the Ray job."""
    from ray.job_submission import JobSubmissionClient

    proc = make_processing("sleeper", SLEEPER, parameters_schema=SLEEP_SCHEMA)
    job = dr.launch_job(proc["id"], version["id"], parameters={"seconds": 120})
    run_id = job["runs"][0]["id"]
    wait_for(lambda: log_text(dr, run_id), lambda text: "pid " in text, 60, 0.1)
    os.kill(ray_workers[0].pid, signal.SIGKILL)  # the worker alone: its Ray job goes on
    ray_workers[0].wait()
    ray_workers.append(start_worker(ray_server))  # it finds the run's lease expired
    run = finished(dr, run_id, 60)
    assert (run["status"], run["failure_reason"]) == ("failed", "lost"), run
    ray = JobSubmissionClient(ray_head.address)
    ray_job = f"darkroom-{ray_server.instance}-run-{run_id}"
    status = wait_for(lambda: ray.get_job_status(ray_job), lambda s: s.is_terminal(), 30, 0.5)
    assert str(status).endswith("STOPPED") or str(status).endswith("FAILED"), status
