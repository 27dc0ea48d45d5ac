"""Jobs and runs through a real server: launch, live logs, failure, fix, re-run, cancel, timeout."""

from __future__ import annotations

import time

import pytest

from darkroom.client import ApiError
from tests.engine.conftest import (
    IGNORES_TERM,
    SLEEP_SCHEMA,
    SLEEPER,
    log_text,
    runtime_pid,
    wait_for,
)

FAILING = """
def run(ctx):
    ctx.log.info("about to fail")
    helper()

def helper():
    raise ValueError("boom: bad input " + str(ctx_free()))

def ctx_free():
    return 42
"""

FIXED = """
def run(ctx):
    ctx.log.info("fixed: %d assets", len([a for page in ctx.iter_asset_pages() for a in page]))
"""


def test_builtin_runs_to_success_with_live_logs(dr, version):
    job = dr.launch_job("dataset-stats", version["id"], parameters={"page_size": 1, "delay_s": 0.3})
    assert job["status"] == "pending"
    assert job["parameters"] == {"page_size": 1, "delay_s": 0.3}
    run_id = job["runs"][0]["id"]
    seen_running = []
    events = []
    for event, data in dr.follow_logs(run_id):
        events.append((event, data))
        if event == "log" and "scanned" in data["text"]:
            seen_running.append(dr.get_run(run_id)["status"])
    end = events[-1]
    assert end[0] == "end"
    assert end[1]["status"] == "succeeded"
    assert "running" in seen_running  # lines arrived while the run was still running
    seqs = [d["seq"] for e, d in events if e == "log"]
    assert seqs == list(range(1, len(seqs) + 1))
    run = dr.get_run(run_id)
    assert run["duration_s"] > 1.0
    assert run["exit_code"] == 0
    assert run["progress"] == {"done": 5, "total": 5}
    texts = [d["text"] for e, d in events if e == "log"]
    assert any("done: 5 assets" in t for t in texts)


def test_failure_fix_and_rerun_keep_both_runs(dr, version, make_processing):
    make_processing("flaky", FAILING)
    job = dr.launch_job("flaky", version["id"])
    first = wait_for(
        lambda: dr.get_job(job["id"]), lambda j: j["status"] not in ("pending", "running")
    )
    run1 = first["runs"][0]
    assert run1["status"] == "failed"
    assert run1["failure_reason"] == "error"
    assert run1["error_summary"] == "ValueError: boom: bad input 42"
    assert run1["exit_code"] == 1
    log1 = log_text(dr, run1["id"])
    assert "Traceback (most recent call last)" in log1
    assert "line 7, in helper" in log1

    updated = dr.update_processing("flaky", source={"kind": "inline", "code": FIXED})
    assert updated["latest_revision"]["number"] == 2
    rerun = dr.rerun_job(job["id"])
    assert rerun["attempt"] == 2
    assert rerun["revision"] == 2
    second = wait_for(lambda: dr.get_job(job["id"]), lambda j: j["status"] == "succeeded")
    assert [(r["attempt"], r["revision"], r["status"]) for r in second["runs"]] == [
        (1, 1, "failed"),
        (2, 2, "succeeded"),
    ]
    assert all(r["duration_s"] is not None for r in second["runs"])
    assert "fixed: 5 assets" in log_text(dr, second["runs"][1]["id"])
    assert "fixed" not in log_text(dr, run1["id"])  # each run keeps its own log


def test_rerun_is_refused_while_a_run_is_active(dr, version, make_processing):
    make_processing("sleepy", SLEEPER, parameters_schema=SLEEP_SCHEMA)
    job = dr.launch_job("sleepy", version["id"], parameters={"seconds": 30})
    with pytest.raises(ApiError) as exc:
        dr.rerun_job(job["id"])  # pending or running
    assert exc.value.status == 409
    assert exc.value.code == "run_active"
    run_id = job["runs"][0]["id"]
    wait_for(lambda: dr.get_run(run_id), lambda r: r["status"] == "running")
    with pytest.raises(ApiError) as exc:
        dr.rerun_job(job["id"])
    assert exc.value.status == 409
    dr.cancel_run(run_id)
    wait_for(lambda: dr.get_run(run_id), lambda r: r["status"] == "cancelled")
    assert dr.rerun_job(job["id"], {"seconds": 0})["attempt"] == 2


def test_cancel_pending_and_running(dr, version, make_processing):
    make_processing("sleepy", SLEEPER, parameters_schema=SLEEP_SCHEMA)
    job = dr.launch_job("sleepy", version["id"])
    run_id = job["runs"][0]["id"]
    wait_for(lambda: log_text(dr, run_id), lambda t: "pid" in t)
    started = time.monotonic()
    assert dr.cancel_run(run_id)["cancel_requested"] is True
    run = wait_for(lambda: dr.get_run(run_id), lambda r: r["status"] == "cancelled")
    assert time.monotonic() - started < 5
    assert run["error_summary"] == "cancelled by request"
    assert "cancel requested" in log_text(dr, run_id)
    with pytest.raises(ApiError) as exc:
        dr.cancel_run(run_id)
    assert exc.value.status == 409


def test_cancel_of_a_process_that_ignores_sigterm(dr, version, make_processing):
    make_processing("stubborn", IGNORES_TERM)
    job = dr.launch_job("stubborn", version["id"])
    run_id = job["runs"][0]["id"]
    wait_for(lambda: log_text(dr, run_id), lambda t: "ignoring SIGTERM" in t)
    started = time.monotonic()
    dr.cancel_run(run_id)
    run = wait_for(lambda: dr.get_run(run_id), lambda r: r["status"] == "cancelled", timeout_s=15)
    took = time.monotonic() - started
    assert 1.0 <= took < 6  # the 1 s grace, then SIGKILL
    assert run["exit_code"] == -9


def test_timeout_kills_and_fails(dr, version, make_processing):
    make_processing("slow", SLEEPER, parameters_schema=SLEEP_SCHEMA, timeout_s=1)
    job = dr.launch_job("slow", version["id"])
    run = wait_for(
        lambda: dr.get_run(job["runs"][0]["id"]),
        lambda r: r["status"] == "failed",
        timeout_s=15,
    )
    assert run["failure_reason"] == "timeout"
    assert run["error_summary"] == "timeout: ran longer than 1 s"
    assert run["duration_s"] < 5


def test_killed_process_fails_the_run(engine_server, dr, version, make_processing):
    import os
    import signal

    make_processing("victim", SLEEPER, parameters_schema=SLEEP_SCHEMA)
    job = dr.launch_job("victim", version["id"])
    run_id = job["runs"][0]["id"]
    wait_for(lambda: log_text(dr, run_id), lambda t: "pid" in t)
    os.kill(runtime_pid(run_id, engine_server.instance), signal.SIGKILL)
    run = wait_for(lambda: dr.get_run(run_id), lambda r: r["status"] == "failed")
    assert run["failure_reason"] == "killed"
    assert run["error_summary"] == "killed by SIGKILL"


def test_job_history_filters(dr, version, make_processing):
    make_processing("flaky", FAILING)
    ok = dr.launch_job("dataset-stats", version["id"])
    bad = dr.launch_job("flaky", version["id"])
    for job in (ok, bad):
        wait_for(
            lambda j=job: dr.get_job(j["id"]), lambda j: j["status"] not in ("pending", "running")
        )
    assert [j["id"] for j in dr.list_jobs(status="failed")] == [bad["id"]]
    assert [j["id"] for j in dr.list_jobs(processing="dataset-stats")] == [ok["id"]]
    assert [j["id"] for j in dr.list_jobs(version_id=version["id"])] == [ok["id"], bad["id"]]


INTERLEAVED = """
import logging

def helper(row):
    return row["missing"]

def run(ctx):
    for i in range(20):
        ctx.log.info("logged %d", i)
        print(f"printed {i}")
    logging.getLogger("mine").warning("careful")
    helper({})
"""


def test_log_keeps_the_order_lines_were_written_and_the_trace_quotes_the_code(
    dr, version, make_processing
):
    make_processing("interleaved", INTERLEAVED)
    job = dr.launch_job("interleaved", version["id"])
    run = wait_for(lambda: dr.get_run(job["runs"][0]["id"]), lambda r: r["finished_at"])
    assert run["status"] == "failed"
    lines = dr.run_logs(run["id"])["items"]
    texts = [x["text"] for x in lines]
    written = [t.removeprefix("INFO darkroom.processing: ") for t in texts
               if "logged" in t or t.startswith("printed")]  # fmt: skip
    assert written == [f"{kind} {i}" for i in range(20) for kind in ("logged", "printed")]
    assert "WARNING mine: careful" in texts
    trace = "\n".join(x["text"] for x in lines if x["stream"] == "stderr")
    assert 'File "processing.py", line 5, in helper' in trace
    assert '    return row["missing"]' in trace  # the author's own line, quoted
    assert "    helper({})" in trace
    assert "darkroom/runtime/__main__.py" not in trace  # not the server's install path
    assert run["error_summary"] == "KeyError: 'missing'"


MISSING_IMPORT = "import math\nimport no_such_module_for_darkroom\n\n\ndef run(ctx):\n    pass\n"


def test_an_import_error_is_traced_from_the_processings_own_lines(dr, version, make_processing):
    """Findings B5: the trace of a processing that does not import showed the server's install
    paths (darkroom's runtime, importlib) before the processing's line."""
    make_processing("importer", MISSING_IMPORT)
    job = dr.launch_job("importer", version["id"])
    run = wait_for(lambda: dr.get_run(job["runs"][0]["id"]), lambda r: r["finished_at"], 60)
    log = log_text(dr, run["id"])
    assert run["status"] == "failed", log
    assert (
        run["error_summary"] == "ModuleNotFoundError: No module named 'no_such_module_for_darkroom'"
    )
    assert 'File "processing.py", line 2, in <module>' in log
    assert "site-packages" not in log
    assert "importlib" not in log
    assert "darkroom/runtime" not in log
