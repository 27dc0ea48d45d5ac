"""Trigger latency: an upload that completes a trigger's batch -> its job pending (goal p95 < 1 s).

A `darkroom serve` with its scheduler and an `assets` trigger (min_assets 1) that launches
dataset-stats. Each event is one asset uploaded; the latency runs from the upload's answer to
the first time `GET /jobs` lists the new job (polled every 10 ms). Baseline in the same run:
the same poll's own round trip, the floor of what any client can see.
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
from darkroom.demo.pages import render_pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=40)
    args = parser.parse_args()
    pages = render_pages(args.events + 1)
    latencies = []
    with tempfile.TemporaryDirectory() as tmpdir, served(Path(tmpdir)) as (url, token):
        dr = Client(url, token)
        v = dr.create_version(dr.create_dataset("incoming")["id"], "v")
        trigger = dr.create_trigger("each", "assets", processing="dataset-stats",
                                    version_id=v["id"], min_assets=1, debounce_s=0)  # fmt: skip
        poll = timed(lambda: dr.list_jobs(), 20)
        for i in range(args.events):
            dr.upload_assets(v["id"], [pages[i]])
            start = time.perf_counter()
            while len(dr.list_jobs()) < i + 1:
                time.sleep(0.01)
            latencies.append(time.perf_counter() - start)
            job = dr.list_jobs()[-1]
            while dr.get_run(job["runs"][0]["id"])["finished_at"] is None:
                time.sleep(0.05)  # one event at a time: the next batch is a new event
        fired = dr.get_trigger(trigger["id"])["fired"]
        dr.close()
    assert fired == args.events, fired
    result = {
        "events": args.events, "fired": fired,
        "event_to_pending_p50_ms": round(p50(latencies) * 1000, 1),
        "event_to_pending_p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "poll_round_trip_p50_ms": round(p50(poll), 2), "goal_p95_ms": 1000,
    }  # fmt: skip
    path = write_result("trigger_latency", result)
    print(f"trigger_latency: upload -> job pending p50 {result['event_to_pending_p50_ms']} ms, "
          f"p95 {result['event_to_pending_p95_ms']} ms over {args.events} events, each fired "
          f"once (poll round trip {result['poll_round_trip_p50_ms']} ms; goal p95 < 1000 ms) "
          f"-> {path}")  # fmt: skip


if __name__ == "__main__":
    main()
