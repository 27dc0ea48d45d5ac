"""Webhook latency: a run's end -> its run.ended post received locally (goal p95 < 1 s).

A `darkroom serve` (DARKROOM_WEBHOOKS_ALLOW_PRIVATE on) and a loopback receiver started here.
For each of N dataset-stats runs, one after the other: the run's `finished_at` (the server's
clock, the same machine's) to the receiver's arrival time of its run.ended delivery. Baseline in
the same run: a bare HTTP post from this process to the receiver, the floor of any delivery.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _common import p50, percentile, served, succeeded, timed, write_result
from darkroom.client import Client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    arrived: dict[int, float] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if body["event"] == "run.ended":
                arrived[body["run"]["id"]] = time.time()
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    bare = timed(lambda: httpx.post(hook_url, json={"event": "ping"}), 20)
    latencies = []
    with (
        tempfile.TemporaryDirectory() as tmpdir,
        served(Path(tmpdir), DARKROOM_WEBHOOKS_ALLOW_PRIVATE="true") as (url, token),
    ):
        dr = Client(url, token)
        v = dr.create_version(dr.create_dataset("d")["id"], "v")
        dr.create_webhook(hook_url, events=["run.ended"])
        for _ in range(args.runs):
            job = dr.launch_job("dataset-stats", v["id"])
            run = succeeded(dr, job["runs"][0]["id"])
            while run["id"] not in arrived:
                time.sleep(0.005)
            finished = datetime.fromisoformat(run["finished_at"]).timestamp()
            latencies.append(arrived[run["id"]] - finished)
        dr.close()
    receiver.shutdown()
    result = {
        "runs": args.runs,
        "end_to_received_p50_ms": round(p50(latencies) * 1000, 1),
        "end_to_received_p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "bare_post_p50_ms": round(p50(bare), 2), "goal_p95_ms": 1000,
    }  # fmt: skip
    path = write_result("webhook_latency", result)
    print(f"webhook_latency: run end -> run.ended received p50 {result['end_to_received_p50_ms']}"
          f" ms, p95 {result['end_to_received_p95_ms']} ms over {args.runs} runs (a bare post "
          f"{result['bare_post_p50_ms']} ms; goal p95 < 1000 ms) -> {path}")  # fmt: skip


if __name__ == "__main__":
    main()
