"""Webhooks through a real server: the ends of runs, jobs and pipeline runs posted to a loopback
receiver the test starts (with DARKROOM_WEBHOOKS_ALLOW_PRIVATE on), signed, retried after a 500,
and kept in each webhook's delivery log."""

from __future__ import annotations

import hashlib
import hmac
import json
import statistics
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from darkroom.client import Client
from tests.engine.conftest import ENGINE_ENV, wait_for
from tests.servers import Server, start_server, stop_server

pytestmark = pytest.mark.slow

OK = "def run(ctx):\n    print('fine', flush=True)\n"
BROKEN = "def run(ctx):\n    raise ValueError('nope')\n"


class Receiver:
    """A loopback HTTP server that records each post; `fail_first` answers 500 once."""

    def __init__(self, fail_first: int = 0) -> None:
        self.posts: list[tuple[float, dict[str, str], bytes]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append((time.time(), dict(self.headers), body))
                failing = receiver.fail_first > 0
                receiver.fail_first -= 1
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [json.loads(body) for _, _, body in self.posts]


@pytest.fixture
def hook_server(tmp_path: Path) -> Iterator[Server]:
    env = {**ENGINE_ENV, "DARKROOM_WEBHOOKS_ALLOW_PRIVATE": "true"}
    server = start_server(tmp_path / "home", env)
    yield server
    stop_server(server)


@pytest.fixture
def dr(hook_server: Server) -> Iterator[Client]:
    with Client(hook_server.url, hook_server.token) as client:  # closed even when a test fails
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(fail_first=1)
    yield found
    found.server.shutdown()


def test_run_job_and_pipeline_ends_are_posted_signed_and_retried(dr, hook_server, receiver):
    v = dr.create_version(dr.create_dataset("d")["id"], "v1")
    dr.create_processing(name="ok", type="custom", source={"kind": "inline", "code": OK})
    dr.create_processing(name="broken", type="custom", source={"kind": "inline", "code": BROKEN})
    hook = dr.create_webhook(receiver.url, secret="s" * 32)
    assert set(hook["events"]) == {"run.ended", "job.ended", "pipeline_run.ended"}

    job = dr.launch_job("broken", v["id"])
    run = wait_for(lambda: dr.get_run(job["runs"][0]["id"]), lambda r: r["finished_at"], 60, 0.1)
    both = {"run.ended", "job.ended"}
    events = wait_for(receiver.events, lambda es: {e["event"] for e in es} >= both, 30, 0.1)
    ended = next(e for e in events if e["event"] == "run.ended")
    assert ended["run"]["id"] == run["id"]
    assert ended["run"]["status"] == "failed"
    assert ended["run"]["error_summary"] == "ValueError: nope"
    assert ended["job"]["processing"] == "broken"
    for _, headers, body in receiver.posts:
        expected = "sha256=" + hmac.new(b"s" * 32, body, hashlib.sha256).hexdigest()
        assert headers["X-Darkroom-Signature"] == expected
        assert headers["X-Darkroom-Event"] == json.loads(body)["event"]
    log = wait_for(lambda: dr.webhook_deliveries(hook["id"]),
                   lambda ds: all(d["status"] == "delivered" for d in ds), 30, 0.1)  # fmt: skip
    retried = [d for d in log if d["attempts"] == 2]
    assert len(retried) == 1, log  # the receiver's one 500: retried after 1 s, then delivered
    assert retried[0]["status"] == "delivered"
    assert retried[0]["last_status_code"] == 204
    delivery_ids = [json.loads(body)["delivery_id"] for _, _, body in receiver.posts]
    assert delivery_ids.count(retried[0]["id"]) == 2  # the same delivery both times

    dr.create_pipeline("two", [{"name": "a", "processing": "ok"},
                               {"name": "b", "processing": "ok", "input": "a"}])  # fmt: skip
    latencies = []
    prun = dr.launch_pipeline("two", v["id"])
    done = wait_for(lambda: [e for e in receiver.events() if e["event"] == "pipeline_run.ended"],
                    lambda es: es, 60, 0.1)  # fmt: skip
    [pipeline_end] = done
    assert pipeline_end["pipeline_run"]["id"] == prun["id"]
    assert pipeline_end["pipeline_run"]["status"] == "succeeded"
    assert pipeline_end["pipeline_run"]["steps"] == {"a": "succeeded", "b": "succeeded"}
    time.sleep(0.5)
    for at, _, body in receiver.posts:
        event = json.loads(body)
        if event["event"] == "run.ended" and event["run"]["status"] == "succeeded":
            finished = datetime.fromisoformat(event["run"]["finished_at"]).timestamp()
            latencies.append(at - finished)
    assert len(latencies) == 2
    assert statistics.median(latencies) < 1.0, latencies  # run end -> received
    deliveries = dr.webhook_deliveries(hook["id"])
    assert all(d["status"] == "delivered" for d in deliveries), deliveries
    assert len(deliveries) == 2 + 2 * 2 + 1  # a run and a job event per run, one pipeline end


def test_a_disabled_webhook_gets_nothing(dr, hook_server, receiver):
    v = dr.create_version(dr.create_dataset("d")["id"], "v1")
    dr.create_processing(name="ok", type="custom", source={"kind": "inline", "code": OK})
    hook = dr.create_webhook(receiver.url, events=["run.ended"])
    dr.update_webhook(hook["id"], enabled=False)
    job = dr.launch_job("ok", v["id"])
    wait_for(lambda: dr.get_run(job["runs"][0]["id"]), lambda r: r["finished_at"], 60, 0.1)
    time.sleep(1)
    assert receiver.posts == []
    assert dr.webhook_deliveries(hook["id"]) == []
