"""darkroom.inference on synthetic outputs: decoders, NMS edge cases, letterbox round trip."""

from __future__ import annotations

import numpy as np
import pytest

from darkroom.inference import Detections, batched_nms, decode_yolov5, decode_yolov8, letterbox, nms
from darkroom.inference.decoders import check_layout
from darkroom.inference.session import parse_names


def v8_output(
    boxes: list[tuple[float, float, float, float, int, float]], nc: int, n: int = 50
) -> np.ndarray:
    """[4 + nc, n] with the given (cx, cy, w, h, class, score) columns first, zeros after."""
    out = np.zeros((4 + nc, n), np.float32)
    for i, (cx, cy, w, h, cls, score) in enumerate(boxes):
        out[:4, i] = (cx, cy, w, h)
        out[4 + cls, i] = score
    return out[None]


def test_yolov8_decodes_thresholds_and_converts_to_xyxy():
    out = v8_output([(50, 50, 20, 10, 1, 0.9), (200, 200, 10, 10, 0, 0.1)], nc=3)
    dets = decode_yolov8(out, 3, confidence_threshold=0.25)
    assert len(dets) == 1
    np.testing.assert_allclose(dets.xyxy[0], [40, 45, 60, 55])
    assert dets.class_id.tolist() == [1]
    assert dets.score[0] == pytest.approx(0.9)


def test_yolov5_multiplies_objectness_and_class_score():
    out = np.zeros((1, 4, 5 + 2), np.float32)
    out[0, 0] = [10, 10, 4, 4, 0.5, 0.2, 0.9]  # 0.45 for class 1
    out[0, 1] = [30, 30, 4, 4, 0.2, 0.9, 0.1]  # 0.18: below 0.25
    dets = decode_yolov5(out, 2)
    assert dets.class_id.tolist() == [1]
    assert dets.score[0] == pytest.approx(0.45)


def test_nms_is_class_aware():
    out = v8_output(
        [(50, 50, 20, 20, 0, 0.9), (51, 51, 20, 20, 0, 0.8), (51, 51, 20, 20, 1, 0.7)], nc=2
    )
    dets = decode_yolov8(out, 2, iou_threshold=0.45)
    assert sorted(dets.class_id.tolist()) == [0, 1]
    assert dets.score.tolist() == pytest.approx([0.9, 0.7])


def test_nms_edge_cases():
    assert nms(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), 0.5).tolist() == []
    same = np.array([[0, 0, 10, 10]] * 4, np.float32)
    assert nms(same, np.array([0.1, 0.9, 0.5, 0.3], np.float32), 0.5).tolist() == [1]
    assert batched_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0), 0.5).tolist() == []
    degenerate = np.array([[5, 5, 5, 5], [5, 5, 5, 5]], np.float32)  # zero area: no overlap
    assert len(nms(degenerate, np.array([0.5, 0.4], np.float32), 0.5)) == 2


def test_max_detections_keeps_the_best():
    boxes = [(10 + 30 * i, 10, 10, 10, 0, 0.3 + 0.01 * i) for i in range(20)]
    dets = decode_yolov8(v8_output(boxes, nc=1), 1, max_detections=5)
    assert len(dets) == 5
    assert dets.score[0] == pytest.approx(0.49)


def test_no_box_above_threshold_gives_empty_detections():
    dets = decode_yolov8(v8_output([], nc=4), 4)
    assert len(dets) == 0
    assert dets.xyxy.shape == (0, 4)


@pytest.mark.parametrize(("width", "height"), [(640, 480), (300, 1000), (1024, 1024), (37, 11)])
def test_letterbox_round_trip(width, height):
    image = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    canvas, placed = letterbox(image, (640, 640))
    assert canvas.shape == (640, 640, 3)
    boxes = np.array(
        [[0, 0, width, height], [width / 4, height / 3, width / 2, height / 2]], np.float32
    )
    np.testing.assert_allclose(placed.to_original(placed.to_input(boxes)), boxes, atol=1e-3)
    # the image sits centred in grey padding
    x0, y0 = placed.to_input(boxes)[0, :2]
    assert x0 == pytest.approx(placed.pad_x)
    assert y0 == pytest.approx(placed.pad_y)
    if placed.pad_y >= 1:
        assert (canvas[0] == 114).all()


def test_boxes_at_image_borders_are_clipped():
    _, placed = letterbox(np.zeros((100, 200, 3), np.uint8), (640, 640))
    out = placed.to_original(np.array([[-50, 100, 700, 700]], np.float32))
    assert out.tolist() == [[0, pytest.approx(0, abs=1e-3), 200, 100]]


def test_layout_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"outputs \[15, N\], this one outputs \[84, 8400\]"):
        check_layout("yolov8", (84, 8400), 11)
    with pytest.raises(ValueError, match="no decoder for model family 'ssd'"):
        check_layout("ssd", (1, 2), 1)
    check_layout("yolov8", (None, None), 11)  # dynamic dims fit


def test_detections_validate_and_filter():
    with pytest.raises(ValueError, match="xyxy"):
        Detections(np.zeros((2, 3)), np.zeros(2), np.zeros(2))
    dets = Detections(np.zeros((3, 4)), np.array([0.1, 0.5, 0.9]), np.array([0, 1, 2]))
    assert dets[dets.score > 0.3].class_id.tolist() == [1, 2]
    assert len(Detections.merge([dets, dets])) == 6


def test_names_metadata_parsed_safely_and_sorted():
    assert parse_names("{1: 'b', 0: 'a', 10: 'k', 2: 'c'}") == ["a", "b", "c", "k"]
    with pytest.raises(ValueError, match="malformed"):
        parse_names("__import__('os').system('true')")
