"""Output path: a run writes new images into an output version, darkroom end to end vs a bare
loop encoding the same images to JPEG files on disk (goal >= 0.80x).

What augmentation does: one warm `darkroom serve` (sandboxed runs, SQLite), a processing that
creates an output version and, for each of N generated 640x480 images, encodes it to JPEG
(quality 90) and adds it with `ctx.upload_images`. Timed from the launch request until the run
is `succeeded` (process start, uploads, image checks, blob writes and rows included); the bare
loop runs just before each round, encoding with Pillow into files. Median of 3 alternating
rounds. The per-image split comes from the run's `data path:` log line.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _common import served, succeeded, summarize_rounds, write_result
from darkroom.client import Client

WRITER = """
import io

import numpy as np
from PIL import Image


def frames(n, seed):
    # photo-like 640x480 frames: a noisy texture made once, shifted per frame
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:480, 0:640]
    base = (xx / 640 * 255 + yy * 0.3) % 256
    texture = np.stack([base, np.roll(base, 100, axis=1), 255 - base], axis=2)
    texture = np.clip(texture + rng.normal(0, 12, texture.shape), 0, 255).astype(np.uint8)
    for i in range(n):
        yield i, np.roll(texture, 7 * i, axis=1)


def run(ctx):
    n = ctx.parameters["images"]
    out = ctx.create_output_version(f"out-{ctx.run_id}", copy_input=False)

    def encoded():
        for i, rgb in frames(n, 0):
            buffer = io.BytesIO()
            Image.fromarray(rgb).save(buffer, format="JPEG", quality=90)
            yield f"{i:04d}.jpg", buffer.getvalue()

    made = ctx.upload_images(out, encoded())
    ctx.log.info("uploaded %d images into version %s", len(made), out.id)
"""
SCHEMA = {"type": "object", "properties": {"images": {"type": "integer", "default": 600}}}


def bare_loop(n: int, folder: Path) -> float:
    """Images/s of making the same frames as the processing and encoding each to a file."""
    namespace: dict[str, Any] = {}
    exec(WRITER, namespace)  # the processing's own `frames`, as a plain function
    start = time.perf_counter()
    for i, rgb in namespace["frames"](n, 0):
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="JPEG", quality=90)
        (folder / f"{i:04d}.jpg").write_bytes(buffer.getvalue())
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        with served(tmp) as (url, token), Client(url, token) as dr:
            v = dr.create_version(dr.create_dataset("bench")["id"], "v")
            dr.create_processing(
                name="writer", type="custom", source={"kind": "inline", "code": WRITER},
                parameters_schema=SCHEMA,
            )  # fmt: skip
            job = dr.launch_job("writer", v["id"], parameters={"images": args.images})
            succeeded(dr, job["runs"][0]["id"])  # a warm-up run
            for number in range(1, args.rounds + 1):
                folder = tmp / f"bare-{number}"
                folder.mkdir()
                bare = bare_loop(args.images, folder)
                start = time.perf_counter()
                run = succeeded(dr, dr.rerun_job(job["id"])["id"])
                took = time.perf_counter() - start
                lines = [x["text"] for x in dr.run_logs(run["id"])["items"]]
                summary = next(x for x in lines if "data path:" in x)
                upload_ms = float(re.search(r"upload \d+ in [\d.]+ s \(([\d.]+) ms", summary)[1])
                ours = args.images / took
                rounds.append({"bare_images_per_s": bare, "darkroom_images_per_s": ours,
                               "ratio": ours / bare, "upload_ms_per_image": upload_ms})  # fmt: skip
                print(f"  round {number}: bare {bare:.0f}/s, darkroom {ours:.0f}/s, upload "
                      f"{upload_ms:.2f} ms/image in the run", file=sys.stderr)  # fmt: skip
            versions = [x for x in dr.list_versions(v["dataset_id"]) if x["name"].startswith("out")]
            assert all(dr.version_stats(x["id"])["assets"] == args.images for x in versions)
    result, mid = summarize_rounds(rounds, 0.80, images=args.images)
    ratio = result["median_ratio"]
    path = write_result("output_path", result)
    print(
        f"output_path: encode + upload into an output version, darkroom vs bare JPEG-to-file "
        f"loop, median of {args.rounds} alternating rounds = {ratio:.2f}x over {args.images} "
        f"images 640x480 (bare {mid['bare_images_per_s']:.0f}/s, darkroom "
        f"{mid['darkroom_images_per_s']:.0f}/s; goal >= 0.80) -> {path}"
    )


if __name__ == "__main__":
    main()
