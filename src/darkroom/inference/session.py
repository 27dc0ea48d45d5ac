"""onnxruntime sessions, and what a model says about itself in its ONNX metadata."""

from __future__ import annotations

import ast
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort

from darkroom.text import is_number

__all__ = [
    "GPU_PROVIDERS",
    "ModelInfo",
    "NoGpuProvider",
    "create_session",
    "execution_providers",
    "parse_names",
    "read_model_info",
]

# onnxruntime's providers for NVIDIA GPUs, the preferred first (onnxruntime-gpu has both; TensorRT
# also needs NVIDIA's TensorRT libraries, and is then tried before CUDA for the nodes it takes).
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


class NoGpuProvider(RuntimeError):
    """A run was given a GPU and this onnxruntime cannot use one."""


def execution_providers(gpus: int, available: Sequence[str] | None = None) -> list[str]:
    """The providers a session uses: the CPU's alone without a GPU; with one, onnxruntime's GPU
    providers that `available` (default: what this onnxruntime reports) has, then the CPU for
    what they do not run. TensorRT is used only with `DARKROOM_TENSORRT=1` (it compiles the
    model at load, minutes for a large one)."""
    if gpus <= 0:
        return ["CPUExecutionProvider"]
    have = list(ort.get_available_providers() if available is None else available)
    wanted = [p for p in GPU_PROVIDERS if p in have]
    if os.environ.get("DARKROOM_TENSORRT") != "1":
        wanted = [p for p in wanted if p != "TensorrtExecutionProvider"]
    if not wanted:
        raise NoGpuProvider(
            f"this run was given {gpus} GPU(s), but onnxruntime here offers only "
            f"{', '.join(have) or 'no provider'}: install darkroom[gpu] (onnxruntime-gpu, in "
            "place of onnxruntime) where runs execute"
        )
    return [*wanted, "CPUExecutionProvider"]


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
    gpus: int = 0,
) -> ort.InferenceSession:
    """A session on the CPU, or on the run's GPU when it was given `gpus` (see
    `execution_providers`); threads default to onnxruntime's own choice (all cores)."""
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
    providers = execution_providers(gpus)
    return ort.InferenceSession(source, sess_options=options, providers=providers)


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
