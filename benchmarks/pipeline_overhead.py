"""A 4-step pipeline on the demo pages vs the same steps launched by hand (goal <= 1.1x).

Steps: smart-version (dedup into a new version) -> data-augmentation (2 copies per page) ->
yolo-preannotation (DocLayNet YOLOv8n) -> dataset-stats, each on the previous step's output.
(model-evaluation is left out: the demo pages carry no people's boxes to score against.)
By hand: each step is launched as soon as the client sees the previous one end (its log
stream's `end` event), on the version it made; the time is from the first launch to the last
end. Pipeline: one launch, the time until the pipeline run is seen ended (polled every 0.1 s).
Alternating rounds, each on a fresh copy of the pages; the median ratio is reported.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import served, succeeded, summarize_rounds, write_result
from darkroom.client import Client
from darkroom.demo.model import doclaynet_path
from darkroom.demo.pages import render_pages

STEPS = [
    {"name": "dedup", "processing": "smart-version"},
    {"name": "augment", "processing": "data-augmentation", "input": "dedup",
     "parameters": {"copies_per_asset": 2}},
    {"name": "label", "processing": "yolo-preannotation", "input": "augment"},
    {"name": "stats", "processing": "dataset-stats", "input": "label"},
]  # fmt: skip


def by_hand(dr: Client, version_id: int, model_version_id: int) -> float:
    start = time.perf_counter()
    target = version_id
    for step in STEPS:
        mv = model_version_id if step["processing"] == "yolo-preannotation" else None
        job = dr.launch_job(step["processing"], target, model_version_id=mv,
                            parameters=step.get("parameters"))  # fmt: skip
        succeeded(dr, job["runs"][0]["id"])
        produced = [v["id"] for v in dr.list_versions(dr.get_version(target)["dataset_id"])
                    if v.get("produced_by_job_id") == job["id"]]  # fmt: skip
        target = produced[-1] if produced else target  # in place: the same version
    return time.perf_counter() - start


def as_pipeline(dr: Client, version_id: int) -> float:
    start = time.perf_counter()
    run = dr.launch_pipeline("bench", version_id)
    while (run := dr.get_pipeline_run(run["id"]))["status"] == "running":
        time.sleep(0.1)
    assert run["status"] == "succeeded", run
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    pages = render_pages(args.pages)
    rounds = []
    with tempfile.TemporaryDirectory() as tmpdir, served(Path(tmpdir)) as (url, token):
        dr = Client(url, token)
        mv = dr.upload_model_version(dr.create_model("doclaynet")["id"], doclaynet_path())
        steps = [dict(s) for s in STEPS]
        steps[2]["model_version_id"] = mv["id"]
        dr.create_pipeline("bench", steps)
        ds = dr.create_dataset("pages")
        for i in range(args.rounds):
            timings = {}
            for how in ("hand", "pipeline") if i % 2 == 0 else ("pipeline", "hand"):
                v = dr.create_version(ds["id"], f"round-{i}-{how}")
                dr.create_label(v["id"], "Text")
                dr.upload_assets(v["id"], pages)
                timings[how] = (by_hand(dr, v["id"], mv["id"]) if how == "hand"
                                else as_pipeline(dr, v["id"]))  # fmt: skip
            rounds.append({"hand_s": timings["hand"], "pipeline_s": timings["pipeline"],
                           "ratio": timings["pipeline"] / timings["hand"]})  # fmt: skip
        dr.close()
    result, mid = summarize_rounds(rounds, 1.1, pages=args.pages, steps=len(STEPS))
    path = write_result("pipeline_overhead", result)
    print(f"pipeline_overhead: 4-step pipeline {mid['pipeline_s']:.2f} s vs by hand "
          f"{mid['hand_s']:.2f} s on {args.pages} pages: {result['median_ratio']}x "
          f"(median of {args.rounds}; goal <= 1.1x) -> {path}")  # fmt: skip


if __name__ == "__main__":
    main()
