"""Predict throughput at 8 concurrent clients vs a bare onnxruntime loop (goal >= 0.85x).

Same model (DocLayNet YOLOv8n, 1024 px, a fixed batch of 1 as exported, so both sides run it
one image at a time), same rendered pages:
(a) bare: decode, letterbox, onnxruntime, boxes + NMS in a loop in this process;
(b) darkroom: 8 client threads, each with its own kept-alive connection, send the pages to
    `POST /deployments/{id}/predict` on a real `darkroom serve` (one replica, max_batch 8:
    requests queue in the replica while a batch runs, every prediction logged).
Images per second of each; alternating rounds, the median round's ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).parent))
from _common import bare_detect, served, summarize_rounds, write_result
from darkroom.client import Client
from darkroom.demo.model import doclaynet_path
from darkroom.demo.pages import render_pages
from predict_overhead import wait_serving

CLIENTS = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=48)
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
        dr.create_deployment("bench", mv["id"], settings={"max_batch": CLIENTS})
        wait_serving(dr, "bench")
        clients = [Client(url, token) for _ in range(CLIENTS)]
        for c in clients:
            c.predict("bench", pages[0])  # connections opened, replica warm

        def send(i: int) -> None:
            for data in pages[i::CLIENTS]:
                clients[i].predict("bench", data)

        bare_detect(session, pages[0])
        for number in range(1, args.rounds + 1):
            start = time.perf_counter()
            for data in pages:
                bare_detect(session, data)
            bare = len(pages) / (time.perf_counter() - start)
            time.sleep(0.2)
            start = time.perf_counter()
            with ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(send, range(CLIENTS)))
            ours = len(pages) / (time.perf_counter() - start)
            rounds.append({"bare_images_per_s": bare, "darkroom_images_per_s": ours,
                           "ratio": ours / bare})  # fmt: skip
            print(f"  round {number}: bare {bare:.2f} images/s, darkroom {ours:.2f} at "
                  f"{CLIENTS} clients", file=sys.stderr)  # fmt: skip
            time.sleep(0.2)
        logged = dr.deployment_figures("bench", minutes=60)["requests"]
        assert logged == CLIENTS + args.rounds * len(pages), logged
        for c in clients:
            c.close()
    result, mid = summarize_rounds(rounds, 0.85, images=args.images, clients=CLIENTS)
    path = write_result("predict_throughput", result)
    print(f"predict_throughput: darkroom at {CLIENTS} concurrent clients vs a bare onnxruntime "
          f"loop, median of {args.rounds} alternating rounds = {result['median_ratio']:.2f}x "
          f"({mid['darkroom_images_per_s']:.2f} vs {mid['bare_images_per_s']:.2f} images/s) "
          f"over {args.images} pages (goal >= 0.85) -> {path}")  # fmt: skip


if __name__ == "__main__":
    main()
