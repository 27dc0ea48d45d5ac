"""onnxruntime sessions, and what a model says about itself in its ONNX metadata."""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort

from darkroom.text import is_number

__all__ = ["ModelInfo", "create_session", "parse_names", "read_model_info"]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """Read from the model: input size, batch (None: dynamic), labels and stride when the
    exporter wrote them (Ultralytics writes `names`, `imgsz`, `stride`)."""

    input_name: str
    input_size: tuple[int, int] | None  # (height, width)
    batch: int | None
    output_shape: tuple[int | None, ...]
    labels: list[str] | None
    stride: int | None
    metadata: dict[str, str]


def create_session(
    model: str | Path | bytes,
    *,
    intra_op_threads: int | None = None,
    inter_op_threads: int | None = None,
    spinning: bool = False,
) -> ort.InferenceSession:
    """A CPU session; threads default to onnxruntime's own choice (all cores)."""
    options = ort.SessionOptions()
    if intra_op_threads:
        options.intra_op_num_threads = intra_op_threads
    if inter_op_threads:
        options.inter_op_num_threads = inter_op_threads
    options.log_severity_level = 3
    if not spinning:
        # Idle intra-op threads otherwise busy-wait, stealing the cores that decode the next
        # images in the background (measured on 2 cores: see benchmarks/preannotation_throughput)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = model if isinstance(model, bytes) else os.fspath(model)
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])


def parse_names(raw: str) -> list[str]:
    """Ultralytics' `names` metadata (`{0: 'person', 1: 'car'}` or a list), ordered by key.

    Parsed as a Python literal, never evaluated; some exports store the mapping out of order.
    """
    value: Any = ast.literal_eval(raw)
    if isinstance(value, dict):
        return [str(value[k]) for k in sorted(value, key=int)]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    raise ValueError("names metadata is neither a mapping nor a list")


def _dim(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


def read_model_info(session: ort.InferenceSession) -> ModelInfo:
    inp = session.get_inputs()[0]
    shape = list(inp.shape)
    if len(shape) != 4:
        raise ValueError(f"expected an image input [batch, 3, height, width], got {shape}")
    meta = dict(session.get_modelmeta().custom_metadata_map)
    size = (_dim(shape[2]), _dim(shape[3]))
    input_size = (size[0], size[1]) if size[0] and size[1] else None
    if input_size is None and "imgsz" in meta:
        imgsz = ast.literal_eval(meta["imgsz"])
        input_size = (int(imgsz[0]), int(imgsz[1])) if isinstance(imgsz, list | tuple) else None
    labels = None
    if "names" in meta:
        try:
            labels = parse_names(meta["names"])
        except (ValueError, SyntaxError):
            labels = None
    stride = int(meta["stride"]) if is_number(meta.get("stride", "")) else None
    output = session.get_outputs()[0]
    return ModelInfo(
        input_name=inp.name,
        input_size=input_size,
        batch=_dim(shape[0]),
        output_shape=tuple(_dim(d) for d in output.shape),
        labels=labels,
        stride=stride,
        metadata=meta,
    )
