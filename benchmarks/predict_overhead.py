"""Predict overhead: a deployment's answer vs a bare onnxruntime call (goal: p50 <= 5 ms extra).

Same model (DocLayNet YOLOv8n, 1024 px), same rendered pages, one at a time:
(a) bare: decode, letterbox, onnxruntime, boxes + NMS in this process with the plain libraries;
(b) darkroom: `POST /deployments/{id}/predict` on a real `darkroom serve` (HTTP, token check,
    image checks, the replica's pipe, its decoding and inference, the prediction logged before
    the answer), one client with a kept-alive connection.
Timings swing by tens of ms on these machines while the overhead is a few: each page goes
through (a) then (b) at once, a pair; a round's overhead is the median of its pairs'
differences, and the figure the median of the rounds'. A pause between the two calls lets
the other side's idle threads stop spinning (onnxruntime's default busy-wait would otherwise
take the cores from whichever runs next).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).parent))
from _common import bare_detect, p50, served, write_result
from darkroom.client import Client
from darkroom.demo.model import doclaynet_path
from darkroom.demo.pages import render_pages

PAUSE_S = 0.1


def wait_serving(dr: Client, name: str) -> None:
    for _ in range(600):
        if dr.get_deployment(name)["status"] == "serving":
            return
        time.sleep(0.1)
    raise RuntimeError("the deployment did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    model = doclaynet_path()
    pages = [data for _, data in render_pages(args.images)]
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    rounds = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        served(Path(tmp), DARKROOM_CACHE=str(Path(tmp) / "cache")) as (url, token),
        Client(url, token) as dr,
    ):
        mv = dr.upload_model_version(dr.create_model("doclaynet")["id"], model)
        dr.create_deployment("bench", mv["id"])
        wait_serving(dr, "bench")
        dr.predict("bench", pages[0])  # warm-up, as the bare session's first call below
        bare_detect(session, pages[0])
        for number in range(1, args.rounds + 1):
            bare, ours = [], []
            for data in pages:
                start = time.perf_counter()
                bare_detect(session, data)
                bare.append((time.perf_counter() - start) * 1000)
                time.sleep(PAUSE_S)
                start = time.perf_counter()
                dr.predict("bench", data)
                ours.append((time.perf_counter() - start) * 1000)
                time.sleep(PAUSE_S)
            pairs = [o - b for b, o in zip(bare, ours, strict=True)]
            rounds.append({"bare_p50_ms": p50(bare), "darkroom_p50_ms": p50(ours),
                           "overhead_ms": p50(pairs)})  # fmt: skip
            print(f"  round {number}: bare p50 {p50(bare):.1f} ms, darkroom {p50(ours):.1f} ms, "
                  f"pairs' median {p50(pairs):+.1f} ms", file=sys.stderr)  # fmt: skip
    overheads = sorted(r["overhead_ms"] for r in rounds)
    median = overheads[len(overheads) // 2]
    path = write_result("predict_overhead", {
        "images": args.images, "rounds": [{k: round(v, 2) for k, v in r.items()} for r in rounds],
        "median_overhead_ms": round(median, 2), "goal_overhead_ms": 5.0,
    })  # fmt: skip
    print(f"predict_overhead: darkroom predict p50 minus a bare onnxruntime call, median of "
          f"{args.rounds} alternating rounds = {median:+.1f} ms (rounds: "
          f"{', '.join(f'{o:+.1f}' for o in overheads)}; bare p50 "
          f"{rounds[0]['bare_p50_ms']:.0f} ms) over {args.images} pages (goal <= 5 ms) -> {path}")  # fmt: skip


if __name__ == "__main__":
    main()
