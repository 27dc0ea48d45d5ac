"""TF-OD graphs read without TensorFlow, label maps, and the TF-OD output decoder."""

from __future__ import annotations

import random

import numpy as np
import pytest

from darkroom.inference.tf_graph import parse_label_map, read_graph_info
from darkroom.inference.tf_od import decode_tf_od
from tests.engine.test_tf_preannotation import PEDESTRIAN
from tests.unit.test_inference_models import model_path


def test_reads_the_real_graph_nodes_and_its_resize():
    info = read_graph_info(model_path(*PEDESTRIAN).read_bytes())
    assert info.input_size == (300, 300)
    assert info.nodes == 2790


def test_hostile_bytes_raise_value_error_only():
    graph = model_path(*PEDESTRIAN).read_bytes()
    rng = random.Random(7)
    for _ in range(300):
        kind = rng.randrange(3)
        if kind == 0:
            data = rng.randbytes(rng.randrange(1, 400))
        elif kind == 1:  # the real graph, cut short
            data = graph[: rng.randrange(1, 5000)]
        else:  # the real graph's start with bytes flipped
            data = bytearray(graph[:3000])
            for _ in range(5):
                data[rng.randrange(len(data))] = rng.randrange(256)
            data = bytes(data)
        with pytest.raises(ValueError, match=r"GraphDef|Object Detection"):
            read_graph_info(data)


def test_label_map_ids_name_the_classes():
    text = """
    item { id: 2  name: "/m/01g317"  display_name: "person" }
    item {
      name: 'bicycle'
      id: 4
    }
    """
    assert parse_label_map(text) == ["class_1", "person", "class_3", "bicycle"]
    with pytest.raises(ValueError, match="ids must be"):
        parse_label_map("item { id: 0 name: 'x' }")
    with pytest.raises(ValueError, match="ids must be"):
        parse_label_map("item { id: 99999999 name: 'x' }")


def test_decode_tf_od_goes_back_to_pixels_and_drops_what_is_unknown():
    outputs = {
        "detection_boxes": np.array(
            [[[0.1, 0.2, 0.5, 0.6], [0, 0, 1, 1], [0, 0, 0.5, 0.5], [0.2, 0.2, 0.3, 0.3]]],
            np.float32,
        ),
        "detection_scores": np.array([[0.9, 0.8, 0.1, 0.7]], np.float32),
        "detection_classes": np.array([[1, 3, 1, 1]], np.float32),  # 3: beyond 2 labels
        "num_detections": np.array([3], np.float32),  # the 4th is padding
    }
    dets = decode_tf_od(outputs, width=200, height=100, num_classes=2, confidence_threshold=0.25)
    assert len(dets) == 1
    np.testing.assert_allclose(dets.xyxy[0], [40, 10, 120, 50], atol=1e-4)
    assert dets.class_id.tolist() == [0]
    assert dets.score.tolist() == pytest.approx([0.9])
