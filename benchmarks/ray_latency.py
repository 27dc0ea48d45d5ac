"""Ray executor vs local executor: launch -> the processing's first line, and log latency.

The same `darkroom serve` twice, once with its scheduler on the local executor and once with
`--executor ray` on a local Ray head (explicit ports, its own temp dir). A processing prints 50
lines 20 ms apart, each stamped with the wall clock; the client launches it and follows the
run's SSE stream. Launch latency: POST /jobs sent -> first stamped line printed. Log latency:
each line's print -> its arrival on the stream (the node ships output over HTTP every 0.1 s).
Ratios Ray / local in the same run: the machine's noise cancels out.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
from tests.ray_cluster import start_head, stop_head

from _common import p50, percentile, served, write_result
from darkroom.client import Client

PRINTER = """
import time

def run(ctx):
    for i in range(ctx.parameters["lines"]):
        print(f"stamp={time.time():.6f} line={i}", flush=True)
        time.sleep(0.02)
"""
SCHEMA = {"type": "object", "properties": {"lines": {"type": "integer", "default": 50}}}


def measure(dr: Client, version_id: int, runs: int, lines: int) -> tuple[list[float], list[float]]:
    starts, delays = [], []
    for _ in range(runs):
        sent = time.time()
        job = dr.launch_job("printer", version_id, parameters={"lines": lines})
        first = True
        for event, data in dr.follow_logs(job["runs"][0]["id"]):
            if event == "end":
                assert data["status"] == "succeeded", data
            if event == "log" and data["text"].startswith("stamp="):
                stamp = float(data["text"].split()[0].split("=")[1])
                if first:
                    starts.append((stamp - sent) * 1000)
                    first = False
                delays.append((time.time() - stamp) * 1000)
    return starts, delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--lines", type=int, default=50)
    args = parser.parse_args()
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        head = start_head(Path(tmpdir) / "ray")
        try:
            for name, env in (
                ("local", {}),
                ("ray", {"DARKROOM_EXECUTOR": "ray", "DARKROOM_RAY_ADDRESS": head.address}),
            ):
                with served(Path(tmpdir) / name, **env) as (url, token), Client(url, token) as dr:
                    v = dr.create_version(dr.create_dataset("bench")["id"], "v")
                    dr.create_processing(name="printer", type="custom", parameters_schema=SCHEMA,
                                         source={"kind": "inline", "code": PRINTER})  # fmt: skip
                    measure(dr, v["id"], 1, 5)  # warm: imports, the standby, Ray's workers
                    starts, delays = measure(dr, v["id"], args.runs, args.lines)
                out[name] = {
                    "launch_to_first_line_p50_ms": round(p50(starts), 1),
                    "launch_to_first_line_p95_ms": round(percentile(starts, 95), 1),
                    "log_p50_ms": round(p50(delays), 1),
                    "log_p95_ms": round(percentile(delays, 95), 1),
                }
        finally:
            stop_head(head)
    local, ray = out["local"], out["ray"]
    result = {
        **{f"local_{k}": v for k, v in local.items()},
        **{f"ray_{k}": v for k, v in ray.items()},
        "ray_start_s": round(head.started_s, 1),
        "launch_ratio_p50": round(
            ray["launch_to_first_line_p50_ms"] / local["launch_to_first_line_p50_ms"], 2
        ),
        "log_p95_ratio": round(ray["log_p95_ms"] / local["log_p95_ms"], 2),
        "goal_log_p95_ms": 500,
        "runs": args.runs,
    }
    path = write_result("ray_latency", result)
    print(
        f"ray_latency: launch -> first line p50 {ray['launch_to_first_line_p50_ms']} ms on Ray vs "
        f"{local['launch_to_first_line_p50_ms']} ms local ({result['launch_ratio_p50']}x); log "
        f"p95 {ray['log_p95_ms']} ms vs {local['log_p95_ms']} ms (goal < 500) -> {path}"
    )


if __name__ == "__main__":
    main()
