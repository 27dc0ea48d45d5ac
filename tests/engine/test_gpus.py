"""Runs that ask for GPUs, through a real `darkroom serve`: this machine has none, so a worker
is told how many it lends (`DARKROOM_GPUS`), as on a machine whose GPUs it cannot see as files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import onnxruntime as ort

from darkroom.client import Client
from darkroom.processings.yolo_preannotation import SPEC
from tests.engine.conftest import ENGINE_ENV, SLEEP_SCHEMA, log_text, wait_for
from tests.helpers import rendered_page
from tests.servers import DARKROOM, start_server, stop_server
from tests.unit.test_inference_models import DOCLAYNET, model_path

GPU_RUN = """
import os, time

def run(ctx):
    print("gpus", ctx.gpus, "visible", repr(os.environ.get("CUDA_VISIBLE_DEVICES")), flush=True)
    time.sleep(ctx.parameters["seconds"])
"""


def test_a_gpu_run_waits_saying_why_then_runs_on_a_worker_that_lends_one(
    tmp_path: Path, sqlite_template: Path
) -> None:
    home = tmp_path / "home"
    cpu_only = start_server(home, ENGINE_ENV, migrated=sqlite_template)
    try:
        with Client(cpu_only.url, cpu_only.token) as dr:
            [worker] = wait_for(dr.list_workers, bool)  # advertised once its scheduler runs
            assert (worker["gpus"], worker["gpus_free"], worker["executor"]) == (0, 0, "local")
            v = dr.create_version(dr.create_dataset("gpu")["id"], "v1")
            for name, gpus in (("on-gpu", 1), ("on-cpu", 0)):
                dr.create_processing(name=name, type="custom", parameters_schema=SLEEP_SCHEMA,
                                     source={"kind": "inline", "code": GPU_RUN},
                                     resources={"gpus": gpus} if gpus else {})  # fmt: skip
            waiting = dr.launch_job("on-gpu", v["id"], parameters={"seconds": 0})
            waiting_run = waiting["runs"][0]["id"]
            assert "asks for 1 GPU(s) and none of the 1 worker(s) seen has 1" in log_text(
                dr, waiting_run
            )
            # a CPU run launched after it is not held behind it
            cpu = dr.launch_job("on-cpu", v["id"], parameters={"seconds": 0})
            done = wait_for(lambda: dr.get_run(cpu["runs"][0]["id"]),
                            lambda r: r["status"] == "succeeded")  # fmt: skip
            assert "gpus 0 visible ''" in log_text(dr, done["id"])
            assert dr.get_run(waiting_run)["status"] == "pending"
            second = dr.launch_job("on-gpu", v["id"], parameters={"seconds": 0})
    finally:
        stop_server(cpu_only)
        sys.stdout.write(cpu_only.output())
    # the same darkroom, now on a worker lending one GPU: it takes the GPU runs one at a time
    gpu = start_server(home, {**ENGINE_ENV, "DARKROOM_GPUS": "1"})
    try:
        with Client(gpu.url, gpu.token) as dr:
            [worker] = wait_for(dr.list_workers, bool)
            assert (worker["gpus"], worker["executor"]) == (1, "local")
            shown = subprocess.run([DARKROOM, "workers", "--json"], env=gpu.env,
                                   capture_output=True, text=True, timeout=60)  # fmt: skip
            assert shown.returncode == 0, shown.stderr
            assert [(w["id"], w["gpus"]) for w in json.loads(shown.stdout)] == [(worker["id"], 1)]
            runs = [wait_for(lambda r=r: dr.get_run(r), lambda r: r["status"] == "succeeded")
                    for r in (waiting_run, second["runs"][0]["id"])]  # fmt: skip
            for run in runs:
                assert "gpus 1 visible '0'" in log_text(dr, run["id"])
            first, then = sorted(runs, key=lambda r: r["started_at"])
            assert then["started_at"] >= first["finished_at"]  # one GPU: never both at once
            wait_for(dr.list_workers, lambda w: w[0]["gpus_free"] == 1)  # lent back
            _preannotate_on_the_gpu(dr)
    finally:
        stop_server(gpu)
        sys.stdout.write(gpu.output())


ON_GPU = """
from darkroom.processings.detection import preannotate

def run(ctx):
    preannotate(ctx)
"""


def _preannotate_on_the_gpu(dr: Client) -> None:
    """The built-in pre-annotation in a run lent a GPU opens its session on onnxruntime's GPU
    provider; this onnxruntime has none, and the run says what to install."""
    v = dr.create_version(dr.create_dataset("papers")["id"], "v1")
    dr.create_label(v["id"], "Text")
    dr.upload_assets(v["id"], [("p.png", rendered_page(seed=1)[0])])
    mv = dr.upload_model_version(dr.create_model("doclaynet")["id"], model_path(*DOCLAYNET))
    dr.create_processing(name="gpu-preannotation", type="pre_annotation", needs_model=True,
                         source={"kind": "inline", "code": ON_GPU},
                         parameters_schema=SPEC.parameters_schema,
                         resources={"gpus": 1})  # fmt: skip
    job = dr.launch_job("gpu-preannotation", v["id"], model_version_id=mv["id"])
    run = wait_for(lambda: dr.get_run(job["runs"][0]["id"]),
                   lambda r: r["status"] in ("succeeded", "failed"), timeout_s=60)  # fmt: skip
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert run["status"] == "succeeded", log_text(dr, run["id"])
    else:
        assert run["status"] == "failed"
        assert "install darkroom[gpu]" in run["error_summary"], run["error_summary"]
