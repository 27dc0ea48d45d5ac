"""Pre-annotation throughput: darkroom end to end vs a bare onnxruntime loop (goal >= 0.90x).

Same model (DocLayNet YOLOv8n, 1024 px), same N rendered pages, one run:
(a) bare: decode PNG (Pillow), letterbox (OpenCV), onnxruntime, decode boxes + NMS (numpy),
    written with the plain libraries, one image at a time as the model's fixed batch requires;
(b) darkroom: launch `yolo-preannotation` through the API and wait until the run succeeded, its
    annotations stored (includes process start, model load, image download over HTTP).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _common import served, write_result
from darkroom.client import Client
from darkroom.demo.model import doclaynet_path
from darkroom.demo.pages import render_pages


def bare_loop(model: Path, pages: list[bytes], conf: float = 0.25, iou: float = 0.45) -> float:
    """Images/s of the plain-library loop."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    boxes_total = 0
    start = time.perf_counter()
    for data in pages:
        img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        h, w = img.shape[:2]
        s = min(1024 / w, 1024 / h)
        nw, nh = round(w * s), round(h * s)
        canvas = np.full((1024, 1024, 3), 114, np.uint8)
        top, left = (1024 - nh) // 2, (1024 - nw) // 2
        canvas[top : top + nh, left : left + nw] = cv2.resize(img, (nw, nh))
        x = canvas.transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        out = session.run(None, {name: x})[0][0].T
        scores = out[:, 4:].max(1)
        keep = scores > conf
        b, sc, cl = out[keep, :4], scores[keep], out[keep, 4:].argmax(1)
        xyxy = np.c_[b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2] + cl[:, None] * 4096.0
        idx = cv2.dnn.NMSBoxes(
            [[float(a), float(c), float(e - a), float(f - c)] for a, c, e, f in xyxy],
            sc.tolist(), conf, iou,
        )  # fmt: skip
        boxes_total += len(idx)
    took = time.perf_counter() - start
    print(f"  bare: {len(pages)} images, {boxes_total} boxes in {took:.1f} s", file=sys.stderr)
    return len(pages) / took


def darkroom_run(model: Path, pages: list[tuple[str, bytes]]) -> tuple[float, int]:
    """Images/s from launch to succeeded through the API, and the boxes stored."""
    with (
        tempfile.TemporaryDirectory() as tmpdir,
        served(Path(tmpdir), DARKROOM_CACHE=str(Path(tmpdir) / "cache")) as (url, token),
        Client(url, token) as dr,
    ):
        ds = dr.create_dataset("bench")
        v = dr.create_version(ds["id"], "v")
        for label in (
            "Title",
            "Text",
            "Section-header",
            "Table",
            "Picture",
            "Caption",
            "Page-footer",
        ):
            dr.create_label(v["id"], label)
        for i in range(0, len(pages), 16):
            dr.upload_assets(v["id"], pages[i : i + 16])
        m = dr.create_model("doclaynet")
        mv = dr.upload_model_version(m["id"], model)
        # warm-up run on the same server (caches the weights, like any later run)
        warm = dr.launch_job("yolo-preannotation", v["id"], model_version_id=mv["id"])
        while dr.get_run(warm["runs"][0]["id"])["finished_at"] is None:
            time.sleep(0.1)
        start = time.perf_counter()
        job = dr.launch_job("yolo-preannotation", v["id"], model_version_id=mv["id"],
                            parameters={"batch_size": 8})  # fmt: skip
        run_id = job["runs"][0]["id"]
        while (run := dr.get_run(run_id))["finished_at"] is None:
            time.sleep(0.05)
        took = time.perf_counter() - start
        assert run["status"] == "succeeded", run
        shapes = dr.version_stats(v["id"])["shapes"]
    print(f"  darkroom: {len(pages)} images, {shapes} boxes in {took:.1f} s", file=sys.stderr)
    return len(pages) / took, shapes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=64)
    args = parser.parse_args()
    model = doclaynet_path()
    pages = render_pages(args.images)
    bare = bare_loop(model, [data for _, data in pages])
    ours, shapes = darkroom_run(model, pages)
    result = {
        "images": args.images,
        "bare_images_per_s": round(bare, 2),
        "darkroom_images_per_s": round(ours, 2),
        "ratio": round(ours / bare, 3),
        "boxes_stored": shapes,
        "goal_ratio": 0.90,
    }
    path = write_result("preannotation_throughput", result)
    print(
        f"preannotation_throughput: darkroom {ours:.2f} images/s vs bare onnxruntime loop "
        f"{bare:.2f} images/s = {ours / bare:.2f}x over {args.images} pages (goal >= 0.90) -> {path}"
    )


if __name__ == "__main__":
    main()
