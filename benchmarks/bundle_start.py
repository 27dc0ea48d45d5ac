"""A bundle run's start: first run (its environment built) vs later runs (reused).

Measured from the run's `queued_at` to the log line the processing's own code prints first,
over a real `darkroom serve` with an empty cache. The bundle pins one small package
(six==1.16.0). Baseline in the same run: the same code as an inline processing, which runs in
darkroom's environment and pays no bundle or environment step.
"""

from __future__ import annotations

import argparse
import io
import sys
import tarfile
import tempfile
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import p50, served, succeeded, write_result
from darkroom.client import Client

CODE = "import six\n\ndef run(ctx):\n    print('FIRST LINE', six.__version__, flush=True)\n"
MANIFEST = "name: starter\ntype: custom\nentrypoint: main:run\n"


def archive() -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, text in (("darkroom.yaml", MANIFEST), ("main.py", CODE),
                           ("requirements.txt", "six==1.16.0\n")):  # fmt: skip
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def start_ms(dr: Client, processing: str, version_id: int) -> float:
    run_id = dr.launch_job(processing, version_id)["runs"][0]["id"]
    run = succeeded(dr, run_id)
    line = next(x for x in dr.run_logs(run_id)["items"] if x["text"].startswith("FIRST LINE"))
    queued = datetime.fromisoformat(run["queued_at"])
    return (datetime.fromisoformat(line["ts"]) - queued).total_seconds() * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        with served(tmp, DARKROOM_CACHE=str(tmp / "cache")) as (url, token):
            dr = Client(url, token)
            v = dr.create_version(dr.create_dataset("bench")["id"], "v")
            dr.push_bundle(archive())
            dr.create_processing(name="inline-starter", type="custom",
                                 source={"kind": "inline", "code": CODE})  # fmt: skip
            first = start_ms(dr, "starter", v["id"])
            later = [start_ms(dr, "starter", v["id"]) for _ in range(args.repeat)]
            inline = [start_ms(dr, "inline-starter", v["id"]) for _ in range(args.repeat)]
            dr.close()
    result = {
        "first_run_start_ms": round(first),
        "later_runs_start_p50_ms": round(p50(later)),
        "inline_baseline_start_p50_ms": round(p50(inline)),
        "ratio_later_vs_inline": round(p50(later) / p50(inline), 2),
        "repeat": args.repeat,
    }
    out = write_result("bundle_start", result)
    print(
        f"bundle_start: first run {result['first_run_start_ms']} ms (environment built), later "
        f"runs p50 {result['later_runs_start_p50_ms']} ms (reused); inline baseline p50 "
        f"{result['inline_baseline_start_p50_ms']} ms, x{result['ratio_later_vs_inline']} -> {out}"
    )


if __name__ == "__main__":
    main()
