"""Engine tests run a real `darkroom serve` (scheduler inside) with short leases and grace."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from darkroom.client import Client
from tests.helpers import image_bytes
from tests.servers import Server, start_server, stop_server

ENGINE_ENV = {
    "DARKROOM_RUN_LEASE_S": "4",
    "DARKROOM_RUN_HEARTBEAT_S": "1",
    "DARKROOM_CANCEL_GRACE_S": "1",
}

SLEEPER = """
import os, time

def run(ctx):
    ctx.log.info("pid %d", os.getpid())
    for i in range(int(ctx.parameters["seconds"] * 10)):
        time.sleep(0.1)
    print("slept", flush=True)
"""

IGNORES_TERM = """
import os, signal, time

def run(ctx):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ctx.log.info("pid %d, ignoring SIGTERM", os.getpid())
    time.sleep(60)
"""

SLEEP_SCHEMA = {
    "type": "object",
    "properties": {"seconds": {"type": "number", "minimum": 0, "default": 30}},
}


@pytest.fixture
def engine_server(tmp_path: Path, sqlite_template: Path) -> Iterator[Server]:
    srv = start_server(tmp_path / "home", ENGINE_ENV, migrated=sqlite_template)
    yield srv
    stop_server(srv)
    sys.stdout.write(srv.output())  # pytest shows it when the test failed


@pytest.fixture
def dr(engine_server: Server) -> Iterator[Client]:
    with Client(engine_server.url, engine_server.token) as client:
        yield client


@pytest.fixture
def version(dr: Client) -> dict[str, Any]:
    ds = dr.create_dataset("engine")
    v = dr.create_version(ds["id"], "v1")
    dr.create_label(v["id"], "cat")
    dr.upload_assets(v["id"], [(f"{i}.jpg", image_bytes(seed=i)) for i in range(5)])
    return v


@pytest.fixture
def make_processing(dr: Client) -> Callable[..., dict[str, Any]]:
    def make(name: str, code: str, **fields: Any) -> dict[str, Any]:
        return dr.create_processing(
            name=name, type="custom", source={"kind": "inline", "code": code}, **fields
        )

    return make


def wait_for(
    fetch: Callable[[], Any],
    done: Callable[[Any], bool],
    timeout_s: float = 30,
    every_s: float = 0.05,
) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting; last value: {value}")
        time.sleep(every_s)


def log_text(dr: Client, run_id: int) -> str:
    return "\n".join(line["text"] for line in dr.run_logs(run_id, limit=10000)["items"])


def run_processes(run_id: int, instance: str) -> list[int]:
    """Host PIDs of a run of one darkroom `instance` (tests run in parallel, and their servers'
    run ids collide): its sandbox's bwrap, or its unsandboxed runtime, and all below them."""
    from darkroom.engine.processes import descendants
    from darkroom.engine.processes import run_processes as process_table

    roots = process_table(instance).get(run_id, [])
    return sorted(set(roots + [pid for root in roots for pid in descendants(root)]))


def runtime_pid(run_id: int, instance: str) -> int:
    """The host PID of the run's `python -m darkroom.runtime` (its main process)."""
    for pid in run_processes(run_id, instance):
        try:
            if b"darkroom.runtime" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    raise AssertionError(f"no runtime process for run {run_id}")
