"""Log line printed → received on the SSE stream (goal: p95 < 500 ms).

A processing prints 100 lines, 20 ms apart, each stamped with the wall clock at print time; the
client follows the run's SSE stream and compares each line's stamp with its arrival time (same
machine, same clock). Repeated over --runs runs. Baseline in the same run: a bare subprocess
pipe (print → parent reads the line), the floor of capturing output at all.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import p50, percentile, served, write_result
from darkroom.client import Client

PRINTER = """
import time

def run(ctx):
    for i in range(ctx.parameters["lines"]):
        print(f"stamp={time.time():.6f} line={i}", flush=True)
        time.sleep(0.02)
"""
SCHEMA = {"type": "object", "properties": {"lines": {"type": "integer", "default": 100}}}


def baseline(lines: int) -> list[float]:
    code = (
        "import time\n"
        f"for i in range({lines}):\n"
        "    print(f'stamp={time.time():.6f}', flush=True)\n"
        "    time.sleep(0.02)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    out = []
    for line in proc.stdout:  # type: ignore[union-attr]
        out.append((time.time() - float(line.split("=")[1])) * 1000)
    proc.wait()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lines", type=int, default=100)
    args = parser.parse_args()
    delays: list[float] = []
    with tempfile.TemporaryDirectory() as tmpdir, served(Path(tmpdir)) as (url, token):
        dr = Client(url, token)
        ds = dr.create_dataset("bench")
        v = dr.create_version(ds["id"], "v")
        dr.create_processing(
            name="printer", type="custom", source={"kind": "inline", "code": PRINTER},
            parameters_schema=SCHEMA,
        )  # fmt: skip
        for _ in range(args.runs):
            job = dr.launch_job("printer", v["id"], parameters={"lines": args.lines})
            for event, data in dr.follow_logs(job["runs"][0]["id"]):
                if event == "log" and data["text"].startswith("stamp="):
                    stamp = float(data["text"].split()[0].split("=")[1])
                    delays.append((time.time() - stamp) * 1000)
        dr.close()
    bare = baseline(args.lines)
    result = {
        "lines": len(delays),
        "print_to_sse_p50_ms": round(p50(delays), 1),
        "print_to_sse_p95_ms": round(percentile(delays, 95), 1),
        "print_to_sse_max_ms": round(max(delays), 1),
        "bare_pipe_p95_ms": round(percentile(bare, 95), 2),
        "goal_p95_ms": 500,
    }
    path = write_result("sse_latency", result)
    print(
        f"sse_latency: printed -> on SSE p50 {result['print_to_sse_p50_ms']} ms, p95 "
        f"{result['print_to_sse_p95_ms']} ms over {len(delays)} lines (bare pipe p95 "
        f"{result['bare_pipe_p95_ms']} ms; goal p95 < 500 ms) -> {path}"
    )


if __name__ == "__main__":
    main()
