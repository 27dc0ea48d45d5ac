"""Data augmentation: `data-augmentation` end to end vs a bare albumentations loop (goal >= 0.85x).

300 photo-like JPEG files 640x480 with 5 boxes each, one warm `darkroom serve` (sandboxed runs,
SQLite), the same three-transform pipeline, one copy per image, median of 3 alternating rounds:
(a) bare: OpenCV decodes each file, the albumentations pipeline transforms it with its boxes,
    OpenCV encodes it to a JPEG file (quality 90), one after the other;
(b) darkroom: a `data-augmentation` job, re-run, timed from the launch request until the run is
    `succeeded` (process start, reading images and shapes, transforms, encoding, uploads into
    a new version, shapes written).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).parent))
from _common import served, succeeded, summarize_rounds, write_result
from darkroom.client import Client
from darkroom.processings.data_augmentation import build_pipeline
from dataplane import make_images

PIPELINE = [
    {"transform": "HorizontalFlip", "p": 0.5},
    {"transform": "RandomBrightnessContrast", "p": 0.5},
    {"transform": "Affine", "scale": [0.9, 1.1], "rotate": [-10, 10], "p": 0.8},
]
BOXES = [[k * 640 / 6, k * 480 / 6, 640 / 8, 480 / 8] for k in range(5)]


def bare_loop(paths: list[Path], out: Path) -> float:
    """Images/s of decode, transform (boxes too) and JPEG encode to a file."""
    pipeline = build_pipeline(PIPELINE, 0.3)
    quality = [int(cv2.IMWRITE_JPEG_QUALITY), 90]
    start = time.perf_counter()
    for i, path in enumerate(paths):
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        pipeline.set_random_seed(i)
        result = pipeline(image=rgb, bboxes=BOXES, box_ids=list(range(5)), keypoints=[],
                          point_ids=[])  # fmt: skip
        cv2.imwrite(str(out / path.name), cv2.cvtColor(result["image"], cv2.COLOR_RGB2BGR),
                    quality)  # fmt: skip
    return len(paths) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "in").mkdir()
        paths = make_images(args.images, tmp / "in")
        with served(tmp) as (url, token), Client(url, token) as dr:
            v = dr.create_version(dr.create_dataset("bench")["id"], "v")
            dr.create_label(v["id"], "thing")
            for start in range(0, len(paths), 50):
                assets = dr.upload_assets(v["id"], paths[start : start + 50])
                for asset in assets:
                    dr.add_annotations(asset["id"], [
                        {"kind": "rectangle", "label": "thing", "bbox": box} for box in BOXES
                    ])  # fmt: skip
            params = {"pipeline": PIPELINE, "copies_per_asset": 1, "include_originals": False}
            job = dr.launch_job("data-augmentation", v["id"], parameters=params)
            succeeded(dr, job["runs"][0]["id"])  # a warm-up run
            for number in range(1, args.rounds + 1):
                out = tmp / f"bare-{number}"
                out.mkdir()
                bare = bare_loop(paths, out)
                start = time.perf_counter()
                succeeded(dr, dr.rerun_job(job["id"])["id"])
                ours = args.images / (time.perf_counter() - start)
                rounds.append({"bare_images_per_s": bare, "darkroom_images_per_s": ours,
                               "ratio": ours / bare})  # fmt: skip
                print(f"  round {number}: bare {bare:.0f}/s, darkroom {ours:.0f}/s",
                      file=sys.stderr)  # fmt: skip
    result, mid = summarize_rounds(rounds, 0.85, images=args.images)
    path = write_result("augmentation", result)
    print(
        f"augmentation: decode + 3 transforms + JPEG into a new version, darkroom vs bare "
        f"albumentations loop, median of {args.rounds} alternating rounds = "
        f"{result['median_ratio']:.2f}x over {args.images} images 640x480 (bare "
        f"{mid['bare_images_per_s']:.0f}/s, darkroom {mid['darkroom_images_per_s']:.0f}/s; goal "
        f">= 0.85) -> {path}"
    )


if __name__ == "__main__":
    main()
