"""Start latency a sandbox adds: queued -> the processing's first log line, bwrap vs none.

Two warm servers on the same machine, one sandboxing runs (DARKROOM_SANDBOX=bwrap, the
default) and one not (none, what darkroom did before); launches alternate between them so
both see the same load. Times are the server's own: the run's `queued_at` and the timestamp
of the first line the processing printed. Reported: p50 of each and the difference. Since the
standby sandbox (`DARKROOM_STANDBY`, on by default), a sandboxed run after the first one starts
in a sandbox started ahead, so the sandboxed server is the faster one; unsandboxed runs always
start a fresh interpreter.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import p50, percentile, served, succeeded, write_result
from darkroom.client import Client

HELLO = "def run(ctx):\n    print('first line', flush=True)\n"


def _first_line_ms(dr: Client, version_id: int) -> float:
    run_id = dr.launch_job("hello", version_id)["runs"][0]["id"]
    run = succeeded(dr, run_id)
    line = next(x for x in dr.run_logs(run_id)["items"] if x["text"] == "first line")
    queued = datetime.fromisoformat(run["queued_at"])
    return (datetime.fromisoformat(line["ts"]) - queued).total_seconds() * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"bwrap": [], "none": []}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        with (
            served(tmp / "a", DARKROOM_SANDBOX="bwrap", DARKROOM_CACHE=str(tmp / "c1")) as a,
            served(tmp / "b", DARKROOM_SANDBOX="none", DARKROOM_CACHE=str(tmp / "c2")) as b,
        ):
            clients = {"bwrap": Client(*a), "none": Client(*b)}
            versions = {}
            for mode, dr in clients.items():
                v = dr.create_version(dr.create_dataset("bench")["id"], "v")
                dr.create_processing(name="hello", type="custom",
                                     source={"kind": "inline", "code": HELLO})  # fmt: skip
                versions[mode] = v["id"]
                _first_line_ms(dr, v["id"])  # warm-up
            for _ in range(args.runs):
                for mode, dr in clients.items():
                    times[mode].append(_first_line_ms(dr, versions[mode]))
            for dr in clients.values():
                dr.close()
    result = {
        "runs": args.runs,
        "sandboxed_p50_ms": round(p50(times["bwrap"]), 1),
        "sandboxed_p95_ms": round(percentile(times["bwrap"], 95), 1),
        "unsandboxed_p50_ms": round(p50(times["none"]), 1),
        "unsandboxed_p95_ms": round(percentile(times["none"], 95), 1),
    }
    result["added_p50_ms"] = round(result["sandboxed_p50_ms"] - result["unsandboxed_p50_ms"], 1)
    result["ratio_p50"] = round(result["sandboxed_p50_ms"] / result["unsandboxed_p50_ms"], 2)
    path = write_result("sandbox_start", result)
    print(
        f"sandbox_start: queued -> first line p50 {result['sandboxed_p50_ms']} ms sandboxed vs "
        f"{result['unsandboxed_p50_ms']} ms unsandboxed (+{result['added_p50_ms']} ms, "
        f"x{result['ratio_p50']}) over {args.runs} runs each -> {path}"
    )


if __name__ == "__main__":
    main()
