"""TensorFlow Object Detection API models: what the registry checks, and their conversion.

The server must judge an uploaded frozen graph without importing TensorFlow (seconds to import,
hundreds of MB, and a large parser exposed to untrusted bytes), so `read_graph_info` reads the
GraphDef's protobuf wire format itself: node names and ops, and the size the graph's
preprocessor resizes to. Conversion to ONNX (`convert_graph`, tf2onnx; `tf_convert` takes
SavedModels too) runs only inside a run's sandbox; the ONNX graph keeps the model's own
post-processing (its NMS), so a converted model gives the TensorFlow model's boxes to 1e-6 and
runs 2x faster on onnxruntime.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "TF_FORMATS",
    "TF_OD_INPUT",
    "TF_OD_OUTPUTS",
    "TensorFlowMissing",
    "TfGraphInfo",
    "convert_graph",
    "fields",
    "import_tensorflow",
    "parse_label_map",
    "read_graph_info",
    "scan_nodes",
]

TF_FORMATS = ("tf-graph", "tf-saved-model")  # what runs only once converted (or on TensorFlow)
TF_OD_INPUT = "image_tensor"
TF_OD_OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


@dataclass(frozen=True, slots=True)
class TfGraphInfo:
    nodes: int
    input_size: tuple[int, int] | None  # (height, width) the preprocessor resizes to


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def fields(data: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) of one protobuf message, without a schema."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise ValueError("truncated field")
            yield number, wire, data[pos : pos + size]
            pos += size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if pos + width > len(data):
                raise ValueError("truncated field")
            yield number, wire, data[pos : pos + width]
            pos += width
        else:
            raise ValueError(f"wire type {wire}")


def _resize_size(node: bytes) -> tuple[int, int] | None:
    """[height, width] of a Const int32 node (NodeDef.attr["value"].tensor)."""
    for number, _, attr in fields(node):
        if number != 5 or not isinstance(attr, bytes):
            continue
        entry = dict((n, v) for n, _, v in fields(attr))
        if entry.get(1) != b"value" or not isinstance(entry.get(2), bytes):
            continue
        tensor = next((v for n, _, v in fields(entry[2]) if n == 8), None)  # type: ignore[arg-type]
        if not isinstance(tensor, bytes):
            return None
        values: list[int] = []
        for n, wire, v in fields(tensor):
            if n == 4 and isinstance(v, bytes):  # tensor_content: little-endian int32
                values = list(struct.unpack(f"<{len(v) // 4}i", v[: len(v) // 4 * 4]))
            elif n == 7 and wire == 2 and isinstance(v, bytes):  # packed int_val
                pos = 0
                while pos < len(v):
                    x, pos = _varint(v, pos)
                    values.append(x)
        if len(values) >= 2 and all(0 < x < 10_000 for x in values[:2]):
            return values[0], values[1]
    return None


def _node_defs(graph: bytes, functions: bool) -> Iterator[bytes]:
    """A GraphDef's NodeDefs, and with `functions` those of its library's functions (where a
    TF2 SavedModel keeps its graph)."""
    for number, _, value in fields(graph):
        if not isinstance(value, bytes):
            continue
        if number == 1:
            yield value
        elif number == 2 and functions:  # FunctionDefLibrary.function[].node_def
            for n, _, function in fields(value):
                if n == 1 and isinstance(function, bytes):
                    for m, _, node in fields(function):
                        if m == 3 and isinstance(node, bytes):
                            yield node


def scan_nodes(graph: bytes, *, functions: bool = False) -> tuple[set[str], tuple[int, int] | None]:
    """A GraphDef's node names and the size its preprocessor resizes to (None when it does not
    say). Raises ValueError on bytes that are not protobuf."""
    names: set[str] = set()
    size = None
    try:
        for node in _node_defs(graph, functions):
            name = op = b""
            for n, _, v in fields(node):
                if n == 1 and isinstance(v, bytes):
                    name = v
                elif n == 2 and isinstance(v, bytes):
                    op = v
            text = name.decode("utf-8", "replace")
            names.add(text)
            if op == b"Const" and size is None and text.endswith("ResizeImage/stack"):
                size = _resize_size(node)
    except struct.error as exc:
        raise ValueError(str(exc)) from None
    return names, size


def read_graph_info(data: bytes) -> TfGraphInfo:
    """Checks that `data` is a frozen TF-OD graph (a GraphDef with `image_tensor` and the four
    detection outputs); raises ValueError saying what is missing."""
    try:
        names, size = scan_nodes(data)
    except ValueError as exc:
        raise ValueError(f"not a TensorFlow GraphDef ({exc})") from None
    if not names:
        raise ValueError("not a TensorFlow GraphDef (no nodes)")
    missing = [n for n in (TF_OD_INPUT, *TF_OD_OUTPUTS) if n not in names]
    if missing:
        raise ValueError(
            "not a TensorFlow Object Detection API graph: no node "
            + ", ".join(repr(n) for n in missing)
        )
    return TfGraphInfo(nodes=len(names), input_size=size)


_ITEM = re.compile(r"item\s*\{(.*?)\}", re.S)
_FIELD = re.compile(r"""(\w+)\s*:\s*(?:"([^"]*)"|'([^']*)'|(-?\d+))""")


def parse_label_map(text: str) -> list[str]:
    """A TF-OD label map (`item { id: 1 name: 'person' }`) as names in class-id order: index
    `id - 1`; `display_name` wins over `name`; ids the map skips are named `class_<id>`."""
    by_id: dict[int, str] = {}
    for block in _ITEM.findall(text):
        fields = {m[0]: m[1] or m[2] or m[3] for m in _FIELD.findall(block)}
        if "id" not in fields or not fields["id"].lstrip("-").isdigit():
            raise ValueError(f"label map item without an id: {block.strip()[:80]!r}")
        name = fields.get("display_name") or fields.get("name")
        if not name:
            raise ValueError(f"label map item {fields['id']} has no name")
        by_id[int(fields["id"])] = name
    if not by_id:
        raise ValueError("no `item { id: … name: … }` in the label map")
    if min(by_id) < 1 or max(by_id) > 10_000:
        raise ValueError("label map ids must be between 1 and 10000")
    return [by_id.get(i, f"class_{i}") for i in range(1, max(by_id) + 1)]


class TensorFlowMissing(RuntimeError):
    """The run's environment has no TensorFlow: nothing can convert or run the model."""


def import_tensorflow() -> tuple[Any, Any]:
    """TensorFlow and tf2onnx, quiet; a clear error where the tensorflow extra is missing."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # its C++ start-up chatter
    for name in ("tensorflow", "tf2onnx"):  # deprecation notes and each optimizer pass
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import tensorflow as tf
        import tf2onnx
    except ImportError as exc:
        raise TensorFlowMissing(
            "converting a TensorFlow model needs the tensorflow extra: "
            "pip install 'darkroom[tensorflow]'"
        ) from exc
    return tf, tf2onnx


def convert_graph(model: Path, out: Path, opset: int = 17) -> float:
    """Converts a TF-OD frozen graph to ONNX at `out`; returns the seconds it took (see
    `tf_convert.convert_to_onnx`, which also takes SavedModels)."""
    started = time.perf_counter()
    tf, tf2onnx = import_tensorflow()
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(model.read_bytes())
    tf2onnx.convert.from_graph_def(
        graph_def,
        input_names=[f"{TF_OD_INPUT}:0"],
        output_names=[f"{name}:0" for name in TF_OD_OUTPUTS],
        opset=opset,
        output_path=str(out),
    )
    return time.perf_counter() - started
