"""Data path: read every image of a version and write 5 boxes per image, darkroom end to end vs
a bare decode loop (goal >= 0.80x).

600 JPEG files 640x480, one warm `darkroom serve` (sandboxed runs, SQLite), median of 3
alternating rounds:
(a) bare: Pillow decodes the 600 files from disk into RGB arrays, one after the other;
(b) darkroom: re-run a processing that iterates `ctx.iter_assets` and writes 5 rectangles per
    image with `ctx.queue_annotations`, timed from the launch request until the run is
    `succeeded` (queueing, process start, downloads, decoding, writes and finishing included).
The per-image split comes from the run's own `data path:` log line and its timestamps.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _common import served, succeeded, summarize_rounds, write_result
from darkroom.client import Client

ANNOTATOR = """
def run(ctx):
    ctx.clear_previous_runs_annotations()
    total = ctx.stats().assets
    done = 0
    for batch in ctx.iter_assets(batch_size=ctx.parameters["batch_size"]):
        rows = []
        for item in batch:
            h, w = item.image.shape[:2]
            shapes = [{"kind": "rectangle", "label": "thing", "score": 0.5,
                       "bbox": [k * w / 6, k * h / 6, w / 8, h / 8]} for k in range(5)]
            rows.append({"asset_id": item.id, "shapes": shapes})
        ctx.queue_annotations(rows)  # written while the next batch is read
        done += len(batch)
        ctx.progress(done, total)
"""
SCHEMA = {"type": "object", "properties": {"batch_size": {"type": "integer", "default": 32}}}


def make_images(n: int, folder: Path) -> list[Path]:
    """Photo-like JPEGs (smooth gradients plus noise, quality 90): decoding cost as a camera's."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:480, 0:640]
    paths = []
    for i in range(n):
        base = (xx * (i % 7 + 1) / 640 * 255 + yy * 0.3) % 256
        rgb = np.stack([base, np.roll(base, i, axis=1), 255 - base], axis=2)
        rgb = np.clip(rgb + rng.normal(0, 12, rgb.shape), 0, 255).astype(np.uint8)
        path = folder / f"{i:04d}.jpg"
        Image.fromarray(rgb).save(path, quality=90)
        paths.append(path)
    return paths


def bare_loop(paths: list[Path]) -> float:
    """Images/s of Pillow decoding the files into RGB arrays."""
    start = time.perf_counter()
    for path in paths:
        with Image.open(path) as img:
            np.asarray(img.convert("RGB"))
    return len(paths) / (time.perf_counter() - start)


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def one_round(dr: Client, job_id: int, n: int) -> tuple[float, dict[str, float]]:
    start = time.perf_counter()
    run = succeeded(dr, dr.rerun_job(job_id)["id"])
    took = time.perf_counter() - start
    lines = dr.run_logs(run["id"])["items"]
    summary = next(x["text"] for x in lines if "data path:" in x["text"])
    split = {
        f"{step}_ms_per_image": float(ms)
        for step, ms in re.findall(r"(\w+) \d+ in [\d.]+ s \(([\d.]+) ms each\)", summary)
    }
    split["queued_to_started_s"] = (ts(run["started_at"]) - ts(run["queued_at"])).total_seconds()
    split["started_to_first_log_s"] = (ts(lines[0]["ts"]) - ts(run["started_at"])).total_seconds()
    split["last_log_to_finished_s"] = (ts(run["finished_at"]) - ts(lines[-1]["ts"])).total_seconds()
    split["darkroom_images_per_s"] = n / took
    return took, split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "images").mkdir()
        paths = make_images(args.images, tmp / "images")
        with served(tmp) as (url, token), Client(url, token) as dr:
            v = dr.create_version(dr.create_dataset("bench")["id"], "v")
            dr.create_label(v["id"], "thing")
            for i in range(0, len(paths), 50):
                dr.upload_assets(v["id"], paths[i : i + 50])
            dr.create_processing(
                name="annotator", type="custom", source={"kind": "inline", "code": ANNOTATOR},
                parameters_schema=SCHEMA,
            )  # fmt: skip
            job = dr.launch_job("annotator", v["id"], parameters={"batch_size": args.batch_size})
            succeeded(dr, job["runs"][0]["id"])  # a warm-up run
            for number in range(1, args.rounds + 1):
                bare = bare_loop(paths)
                _, split = one_round(dr, job["id"], args.images)
                split["bare_images_per_s"] = bare
                split["ratio"] = split["darkroom_images_per_s"] / bare
                rounds.append(split)
                print(f"  round {number}: " + ", ".join(f"{k} {v:.3g}" for k, v in split.items()),
                      file=sys.stderr)  # fmt: skip
            stats = dr.version_stats(v["id"])
            assert stats["shapes"] == 5 * args.images, stats
    result, mid = summarize_rounds(rounds, 0.80, images=args.images, batch_size=args.batch_size)
    ratio = result["median_ratio"]
    path = write_result("dataplane", result)
    print(
        f"dataplane: read + 5 boxes per image, darkroom vs bare Pillow decode loop, median of "
        f"{args.rounds} alternating rounds = {ratio:.2f}x over {args.images} JPEG 640x480 "
        f"(bare {mid['bare_images_per_s']:.0f}/s, darkroom {mid['darkroom_images_per_s']:.0f}/s; "
        f"goal >= 0.80) -> {path}"
    )


if __name__ == "__main__":
    main()
