"""Launch → run `running` with the local executor, warm server (goal: p50 < 300 ms).

100 launches of `dataset-stats`, one after the other. Client-side latency: from sending
POST /jobs to seeing the run `running` (or already ended) through GET /runs/{id}, polled every
5 ms. Baseline in the same run: a bare GET /health round trip, the floor any API call pays.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import p50, percentile, served, timed, write_result
from darkroom.client import Client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    latencies: list[float] = []
    server_side: list[float] = []
    with tempfile.TemporaryDirectory() as tmpdir, served(Path(tmpdir)) as (url, token):
        dr = Client(url, token)
        ds = dr.create_dataset("bench")
        v = dr.create_version(ds["id"], "v")
        health = timed(dr.health, 50)
        for _ in range(args.runs):
            start = time.perf_counter()
            job = dr.launch_job("dataset-stats", v["id"])
            run_id = job["runs"][0]["id"]
            while (run := dr.get_run(run_id))["status"] == "pending":
                time.sleep(0.005)
            latencies.append((time.perf_counter() - start) * 1000)
            while run["finished_at"] is None:
                time.sleep(0.02)
                run = dr.get_run(run_id)
        for job in dr.list_jobs():
            r = job["runs"][0]
            from datetime import datetime

            q, s = datetime.fromisoformat(r["queued_at"]), datetime.fromisoformat(r["started_at"])
            server_side.append((s - q).total_seconds() * 1000)
        dr.close()
    result = {
        "runs": args.runs,
        "launch_to_running_p50_ms": round(p50(latencies), 1),
        "launch_to_running_p95_ms": round(percentile(latencies, 95), 1),
        "queued_to_started_server_p50_ms": round(p50(server_side), 1),
        "health_round_trip_p50_ms": round(p50(health), 2),
        "goal_p50_ms": 300,
    }
    path = write_result("launch_latency", result)
    print(
        f"launch_latency: launch -> running p50 {result['launch_to_running_p50_ms']} ms, "
        f"p95 {result['launch_to_running_p95_ms']} ms over {args.runs} runs (server-side "
        f"queued -> started p50 {result['queued_to_started_server_p50_ms']} ms; bare /health "
        f"{result['health_round_trip_p50_ms']} ms; goal p50 < 300 ms) -> {path}"
    )


if __name__ == "__main__":
    main()
