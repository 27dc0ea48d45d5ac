"""pycocotools vs faster-coco-eval on the same boxes: do they agree to 1e-6, and how much faster?

The `model-evaluation` built-in computes COCO metrics with pycocotools; the issue allows
faster-coco-eval if it matches to 1e-6 and is faster. A generated case of N images, 10 labels,
~8 truths per image and detections made from them (jittered, some missed, some invented, random
scores); both libraries' 12 summary figures and the per-label precision arrays are compared, and
evaluate + accumulate timed (median of 3). pycocotools is a development dependency (the
reference the tests compare with); faster-coco-eval is what `model-evaluation` runs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_result


def case(n_images: int, seed: int = 0) -> tuple[dict, list[dict]]:
    rng = np.random.default_rng(seed)
    images, truths, found = [], [], []
    for image_id in range(1, n_images + 1):
        images.append({"id": image_id, "width": 640, "height": 480})
        for _ in range(rng.integers(2, 14)):
            w, h = rng.uniform(8, 200), rng.uniform(8, 200)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            cat = int(rng.integers(1, 11))
            truths.append({"id": len(truths) + 1, "image_id": image_id, "category_id": cat,
                           "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})  # fmt: skip
            if rng.random() < 0.85:  # found, somewhat off
                j = rng.normal(0, 0.08, 4) * [w, h, w, h]
                label = cat if rng.random() < 0.9 else int(rng.integers(1, 11))
                found.append({"image_id": image_id, "category_id": label,
                              "bbox": [x + j[0], y + j[1], max(w + j[2], 1), max(h + j[3], 1)],
                              "score": float(rng.uniform(0.05, 1))})  # fmt: skip
        for _ in range(rng.integers(0, 5)):  # invented
            w, h = rng.uniform(8, 120), rng.uniform(8, 120)
            found.append({"image_id": image_id, "category_id": int(rng.integers(1, 11)),
                          "bbox": [rng.uniform(0, 600), rng.uniform(0, 440), w, h],
                          "score": float(rng.uniform(0.01, 0.6))})  # fmt: skip
    dataset = {"images": images, "annotations": truths,
               "categories": [{"id": i, "name": f"c{i}"} for i in range(1, 11)]}  # fmt: skip
    return dataset, found


def run(library: str, dataset: dict, found: list[dict]) -> tuple[np.ndarray, np.ndarray, float]:
    if library == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval as Eval
    else:
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as Eval
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = dataset
        truth.createIndex()
        results = truth.loadRes([dict(f) for f in found])
        start = time.perf_counter()
        ev = Eval(truth, results, "bbox")
        ev.evaluate()
        ev.accumulate()
        took = time.perf_counter() - start
        ev.summarize()
    return np.asarray(ev.stats), np.asarray(ev.eval["precision"]), took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    dataset, found = case(args.images)
    times: dict[str, list[float]] = {"pycocotools": [], "faster_coco_eval": []}
    out = {}
    for _ in range(args.repeat):
        for library in times:
            stats, precision, took = run(library, dataset, found)
            times[library].append(took)
            out[library] = (stats, precision)
    stats_diff = float(np.abs(out["pycocotools"][0] - out["faster_coco_eval"][0]).max())
    precision_diff = float(np.abs(out["pycocotools"][1] - out["faster_coco_eval"][1]).max())
    slow, fast = (statistics.median(times[k]) for k in times)
    result = {
        "images": args.images, "truths": len(dataset["annotations"]), "detections": len(found),
        "pycocotools_s": round(slow, 3), "faster_coco_eval_s": round(fast, 3),
        "speedup": round(slow / fast, 2), "max_stats_difference": stats_diff,
        "max_precision_difference": precision_diff,
        "agree_to_1e-6": stats_diff <= 1e-6 and precision_diff <= 1e-6,
    }  # fmt: skip
    path = write_result("coco_eval_backends", result)
    print(
        f"coco_eval_backends: {args.images} images, {len(found)} detections: pycocotools "
        f"{slow:.2f} s, faster-coco-eval {fast:.2f} s ({slow / fast:.1f}x); largest difference "
        f"{stats_diff:.2e} in the summary, {precision_diff:.2e} in precision -> {path}"
    )


if __name__ == "__main__":
    main()
