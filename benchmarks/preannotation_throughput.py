"""Pre-annotation throughput: darkroom end to end vs a bare onnxruntime loop (goal >= 0.95x).

Same model (DocLayNet YOLOv8n, 1024 px), same N rendered pages, one run:
(a) bare: decode PNG (Pillow), letterbox (OpenCV), onnxruntime, decode boxes + NMS (numpy),
    written with the plain libraries, one image at a time as the model's fixed batch requires;
(b) darkroom: launch (re-run) `yolo-preannotation` through the API and wait until the run succeeded, its
    annotations stored (includes process start, model load, image download over HTTP).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).parent))
from _common import bare_detect, served, succeeded, write_result
from darkroom.client import Client
from darkroom.demo.model import doclaynet_path
from darkroom.demo.pages import render_pages


def bare_loop(model: Path, pages: list[bytes], conf: float = 0.25, iou: float = 0.45) -> float:
    """Images/s of the plain-library loop."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    boxes_total = 0
    start = time.perf_counter()
    for data in pages:
        boxes_total += bare_detect(session, data, conf, iou)
    took = time.perf_counter() - start
    print(f"  bare: {len(pages)} images, {boxes_total} boxes in {took:.1f} s", file=sys.stderr)
    return len(pages) / took


def rounds(model: Path, pages: list[tuple[str, bytes]], n: int) -> list[tuple[float, float, str]]:
    """(bare images/s, darkroom images/s, the run's own loop) for `n` alternating rounds.

    Alternating on one warm server keeps the machine's drift (other load, CPU clocks) out of
    the ratio: each darkroom run is compared with the bare loop run just before it.
    """
    out = []
    with (
        tempfile.TemporaryDirectory() as tmpdir,
        served(Path(tmpdir), DARKROOM_CACHE=str(Path(tmpdir) / "cache")) as (url, token),
        Client(url, token) as dr,
    ):
        ds = dr.create_dataset("bench")
        v = dr.create_version(ds["id"], "v")
        for label in ("Title", "Text", "Section-header", "Table", "Picture", "Caption",
                      "Page-footer"):  # fmt: skip
            dr.create_label(v["id"], label)
        for i in range(0, len(pages), 16):
            dr.upload_assets(v["id"], pages[i : i + 16])
        mv = dr.upload_model_version(dr.create_model("doclaynet")["id"], model)
        job = dr.launch_job("yolo-preannotation", v["id"], model_version_id=mv["id"],
                            parameters={"batch_size": 8})  # fmt: skip
        succeeded(dr, job["runs"][0]["id"])  # a warm-up run: caches the weights, like any later run
        for number in range(1, n + 1):
            bare = bare_loop(model, [data for _, data in pages])
            start = time.perf_counter()
            run_id = dr.rerun_job(job["id"])["id"]
            succeeded(dr, run_id)
            ours = len(pages) / (time.perf_counter() - start)
            loop = next(x["text"] for x in dr.run_logs(run_id)["items"] if "images:" in x["text"])
            out.append((bare, ours, loop.split("images: ", 1)[1]))
            print(f"  round {number}: bare {bare:.2f} images/s, darkroom {ours:.2f} (its loop: "
                  f"{out[-1][2]})", file=sys.stderr)  # fmt: skip
        shapes = dr.version_stats(v["id"])["shapes"]
        assert shapes > 0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    model = doclaynet_path()
    pages = render_pages(args.images)
    results = rounds(model, pages, args.rounds)
    ratios = sorted(ours / bare for bare, ours, _ in results)
    ratio = ratios[len(ratios) // 2]
    result = {
        "images": args.images,
        "rounds": [{"bare_images_per_s": round(b, 2), "darkroom_images_per_s": round(o, 2),
                    "ratio": round(o / b, 3), "run_loop": loop} for b, o, loop in results],
        "median_ratio": round(ratio, 3),
        "goal_ratio": 0.95,
    }  # fmt: skip
    path = write_result("preannotation_throughput", result)
    print(
        f"preannotation_throughput: darkroom vs bare onnxruntime loop, median of "
        f"{args.rounds} alternating rounds = {ratio:.2f}x (rounds: "
        f"{', '.join(f'{r:.2f}' for r in ratios)}) over {args.images} pages (goal >= 0.95) "
        f"-> {path}"
    )


if __name__ == "__main__":
    main()
