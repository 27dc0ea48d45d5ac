"""Pre-annotation on a GPU: darkroom end to end vs a bare onnxruntime CUDA loop (goal >= 1.0x).

Where there is no NVIDIA GPU, or this onnxruntime has no CUDA provider (install darkroom[gpu]),
it says so, writes that down and exits 0: nothing is measured on a CPU here (see
`preannotation_throughput.py` for the CPU figure).

With one: the same model and pages as the CPU benchmark, (a) the plain libraries on
onnxruntime's CUDA provider, (b) a processing asking for `gpus: 1` that runs the built-in
pre-annotation (`darkroom.processings.detection.preannotate`, the same code as
yolo-preannotation), launched through the API on a server lending the GPU; rounds alternate.
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
from darkroom.engine.gpus import detect_gpus
from darkroom.processings.yolo_preannotation import SPEC

ON_GPU = """
from darkroom.processings.detection import preannotate

def run(ctx):
    ctx.log.info("on %d GPU(s)", ctx.gpus)
    preannotate(ctx)
"""
PROVIDERS = ["CUDAExecutionProvider", "CPUExecutionProvider"]


def bare_loop(model: Path, pages: list[bytes]) -> float:
    session = ort.InferenceSession(str(model), providers=PROVIDERS)
    for data in pages[:2]:  # CUDA's first calls compile kernels: warm it as a script would
        bare_detect(session, data)
    start = time.perf_counter()
    for data in pages:
        bare_detect(session, data)
    return len(pages) / (time.perf_counter() - start)


def rounds(model: Path, pages: list[tuple[str, bytes]], n: int) -> list[tuple[float, float]]:
    out = []
    with (
        tempfile.TemporaryDirectory() as tmpdir,
        served(Path(tmpdir), DARKROOM_CACHE=str(Path(tmpdir) / "cache"), DARKROOM_GPUS="1") as (
            url,
            token,
        ),
        Client(url, token) as dr,
    ):
        v = dr.create_version(dr.create_dataset("bench")["id"], "v")
        for label in ("Title", "Text", "Section-header", "Table", "Picture", "Caption"):
            dr.create_label(v["id"], label)
        for i in range(0, len(pages), 16):
            dr.upload_assets(v["id"], pages[i : i + 16])
        mv = dr.upload_model_version(dr.create_model("doclaynet")["id"], model)
        dr.create_processing(name="gpu-preannotation", type="pre_annotation", needs_model=True,
                             source={"kind": "inline", "code": ON_GPU},
                             parameters_schema=SPEC.parameters_schema,
                             resources={"gpus": 1})  # fmt: skip
        job = dr.launch_job("gpu-preannotation", v["id"], model_version_id=mv["id"],
                            parameters={"batch_size": 8})  # fmt: skip
        succeeded(dr, job["runs"][0]["id"])  # warm-up: caches the weights
        for number in range(1, n + 1):
            bare = bare_loop(model, [data for _, data in pages])
            start = time.perf_counter()
            succeeded(dr, dr.rerun_job(job["id"])["id"])
            ours = len(pages) / (time.perf_counter() - start)
            out.append((bare, ours))
            print(f"  round {number}: bare {bare:.1f} images/s, darkroom {ours:.1f}",
                  file=sys.stderr)  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    gpus, providers = detect_gpus(), ort.get_available_providers()
    if not gpus or "CUDAExecutionProvider" not in providers:
        why = (f"{len(gpus)} NVIDIA GPU(s) found, onnxruntime {ort.__version__} offers "
               f"{', '.join(providers)}")  # fmt: skip
        path = write_result("gpu_preannotation", {"measured": False, "why": why})
        print(f"gpu_preannotation: no GPU to measure here ({why}); nothing measured -> {path}")
        return
    results = rounds(doclaynet_path(), render_pages(args.images), args.rounds)
    ratios = sorted(ours / bare for bare, ours in results)
    ratio = ratios[len(ratios) // 2]
    path = write_result("gpu_preannotation", {
        "measured": True, "images": args.images, "gpus": len(gpus), "median_ratio": round(ratio, 3),
        "rounds": [{"bare_images_per_s": round(b, 2), "darkroom_images_per_s": round(o, 2)}
                   for b, o in results], "goal_ratio": 1.0,
    })  # fmt: skip
    print(
        f"gpu_preannotation: darkroom vs bare onnxruntime CUDA loop, median of {args.rounds} "
        f"alternating rounds = {ratio:.2f}x over {args.images} pages (goal >= 1.0) -> {path}"
    )


if __name__ == "__main__":
    main()
