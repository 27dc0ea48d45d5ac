"""Crash recovery: killed workers and servers never leave a run running forever, and no run is
executed twice."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from darkroom.client import Client
from darkroom.db.engine import make_engine
from tests.conftest import PG_ADMIN_URL, _pg_url
from tests.engine.conftest import (
    ENGINE_ENV,
    SLEEP_SCHEMA,
    SLEEPER,
    log_text,
    run_processes,
    wait_for,
)
from tests.helpers import image_bytes
from tests.servers import start_server, start_worker, stop_server

LEASE_S = float(ENGINE_ENV["DARKROOM_RUN_LEASE_S"])


def _setup(dr: Client) -> int:
    ds = dr.create_dataset("d")
    v = dr.create_version(ds["id"], "v")
    dr.upload_assets(v["id"], [("a.jpg", image_bytes())])
    dr.create_processing(
        name="sleepy", type="custom", source={"kind": "inline", "code": SLEEPER},
        parameters_schema=SLEEP_SCHEMA,
    )  # fmt: skip
    return v["id"]


def _run_pids(dr: Client, run_id: int, instance: str) -> list[int]:
    wait_for(lambda: log_text(dr, run_id), lambda t: "pid" in t)
    pids = run_processes(run_id, instance)
    assert pids, "the run's processes are visible on the host"
    return pids


def _alive(pids: list[int]) -> list[int]:
    """Those still running (a zombie waiting for its reaper counts as gone)."""
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_kill_9_of_a_worker_fails_its_run_as_lost(tmp_path):
    server = start_server(tmp_path / "home", ENGINE_ENV, "--no-scheduler")
    worker = start_worker(server)
    orphans: list[int] = []
    try:
        with Client(server.url, server.token) as dr:
            version_id = _setup(dr)
            job = dr.launch_job("sleepy", version_id)
            run_id = job["runs"][0]["id"]
            orphans = _run_pids(dr, run_id, server.instance)
            assert dr.get_run(run_id)["status"] == "running"
            os.kill(worker.pid, signal.SIGKILL)  # the worker alone, not its process group
            worker.wait()
            killed_at = time.monotonic()
            # its runs die with it: no process of the run survives the worker
            wait_for(lambda: _alive(orphans), lambda alive: not alive, timeout_s=5)
            worker = start_worker(server)
            run = wait_for(
                lambda: dr.get_run(run_id), lambda r: r["status"] != "running", 3 * LEASE_S
            )
            assert run["status"] == "failed"
            assert run["failure_reason"] == "lost"
            # a lease, plus the new worker's start (slow when tests run in parallel)
            assert time.monotonic() - killed_at < LEASE_S + 6
            # the job can be re-run, and the new worker runs it
            rerun = dr.rerun_job(job["id"], {"seconds": 0})
            done = wait_for(lambda: dr.get_run(rerun["id"]), lambda r: r["status"] == "succeeded")
            assert done["worker_id"] != run["worker_id"]
    finally:
        _kill(orphans)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        stop_server(server)


def test_kill_9_of_serve_fails_its_run_as_lost_after_restart(tmp_path):
    home = tmp_path / "home"
    server = start_server(home, ENGINE_ENV)
    orphans: list[int] = []
    try:
        with Client(server.url, server.token) as dr:
            version_id = _setup(dr)
            run_id = dr.launch_job("sleepy", version_id)["runs"][0]["id"]
            orphans = _run_pids(dr, run_id, server.instance)
        os.kill(server.process.pid, signal.SIGKILL)
        stop_server(server)
        wait_for(lambda: _alive(orphans), lambda alive: not alive, timeout_s=5)
        restarted_at = time.monotonic()
        server = start_server(home, ENGINE_ENV)
        with Client(server.url, server.token) as dr:
            run = wait_for(
                lambda: dr.get_run(run_id), lambda r: r["status"] != "running", 3 * LEASE_S
            )
            assert run["status"] == "failed"
            assert run["failure_reason"] == "lost"
            assert time.monotonic() - restarted_at < LEASE_S + 6  # + the start, under load
    finally:
        _kill(orphans)
        stop_server(server)


RECORDER = """
import os

def run(ctx):
    fd = os.open(ctx.parameters["path"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{ctx.run_id}\\n".encode())
    os.close(fd)
"""


@pytest.mark.postgres
@pytest.mark.slow
def test_four_workers_never_run_a_run_twice(tmp_path):
    runs_count = int(os.environ.get("DARKROOM_TEST_WORKER_RUNS", "60"))
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"darkroom_workers_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    env = {
        **ENGINE_ENV,
        "DARKROOM_DATABASE_URL": _pg_url(name),
        "DARKROOM_MAX_CONCURRENT_RUNS": "2",
        "DARKROOM_SANDBOX": "none",  # the recorder appends to a file of the test's
    }
    server = start_server(tmp_path / "home", env, "--no-scheduler")
    workers = []
    record = tmp_path / "executions.txt"
    try:
        with Client(server.url, server.token) as dr:
            ds = dr.create_dataset("d")
            v = dr.create_version(ds["id"], "v")
            dr.create_processing(
                name="recorder", type="custom", source={"kind": "inline", "code": RECORDER},
                parameters_schema={"type": "object", "properties": {"path": {"type": "string"}}},
            )  # fmt: skip
            workers = [start_worker(server, env) for _ in range(4)]
            jobs = [
                dr.launch_job("recorder", v["id"], parameters={"path": str(record)})
                for _ in range(runs_count)
            ]
            wait_for(
                lambda: dr.list_jobs(status="succeeded"),
                lambda js: len(js) == runs_count,
                timeout_s=600,
                every_s=1,
            )
            executed = Path(record).read_text().split()
            assert len(executed) == runs_count
            assert sorted(map(int, executed)) == sorted(j["runs"][0]["id"] for j in jobs)
            used = {r["worker_id"] for j in dr.list_jobs() for r in j["runs"]}
            assert len(used) >= 2  # the work was actually shared
    finally:
        for w in workers:
            os.killpg(w.pid, signal.SIGKILL)
            w.wait()
        stop_server(server)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def test_stopping_serve_fails_its_runs_as_interrupted(tmp_path):
    home = tmp_path / "home"
    server = start_server(home, ENGINE_ENV)
    try:
        with Client(server.url, server.token) as dr:
            version_id = _setup(dr)
            run_id = dr.launch_job("sleepy", version_id)["runs"][0]["id"]
            _run_pids(dr, run_id, server.instance)
    finally:
        stop_server(server)  # SIGTERM: a graceful stop
    server = start_server(home, ENGINE_ENV)
    try:
        with Client(server.url, server.token) as dr:
            run = dr.get_run(run_id)
            assert (run["status"], run["failure_reason"]) == ("failed", "interrupted")
            assert run["error_summary"] == "interrupted: its worker was stopped"
            assert "worker stopping: run interrupted" in log_text(dr, run_id)
    finally:
        stop_server(server)
