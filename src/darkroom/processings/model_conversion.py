"""`model-conversion`: a model version's weights converted into a new version of the same model.

`to`: `onnx` (a TensorFlow OD frozen graph or SavedModel through tf2onnx), `fp16` (float16 weights,
onnxruntime's converter, inputs and outputs kept float32) or `int8` (onnxruntime's dynamic
quantization, uint8 weights: int8 weights run 4.5x slower than fp32 on this CPU's ConvInteger).
A TensorFlow model asked for fp16 or int8 is converted to ONNX first.

The new version records its lineage (this job, `metadata.source_version_id`) and a report, also
in the log: file sizes, images/s of both models on the same sample images (from the job's
dataset version when it has one, else generated), and the largest box and score deviation of
the converted model's detections from the source's (`darkroom.inference.deviation`). For a
TensorFlow model the source is TensorFlow itself running it.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from darkroom.defaults import RUN_TIMEOUT_S
from darkroom.inference.defaults import MAX_DETECTIONS, THREADS_SCHEMA
from darkroom.inference.tf_graph import TF_FORMATS
from darkroom.processings import BuiltinSpec
from darkroom.processings.detection import (
    DETECTION_PRELOAD,
    PREANNOTATION_PARAMETERS,
    Predictor,
    convert_tf_model,
    predictor_for,
)
from darkroom.runtime import ModelVersion, ProcessingContext

if TYPE_CHECKING:
    import numpy as np

PRELOAD = DETECTION_PRELOAD

SPEC = BuiltinSpec(
    name="model-conversion",
    type="model_conversion",
    target="model_version",
    description="Converts a model version into a new version of the same model: a TensorFlow "
    "frozen graph or SavedModel to ONNX, ONNX to float16, or to int8 by dynamic quantization; "
    "reports size, speed and how far the new model's boxes and scores are from the source's.",
    parameters_schema={
        "type": "object",
        "properties": {
            "to": {"type": "string", "enum": ["onnx", "fp16", "int8"], "default": "onnx"},
            "name": {
                "type": "string",
                "maxLength": 200,
                "default": "",
                "description": "the new version's name (default: the source's, then -<to>)",
            },
            "samples": {
                "type": "integer",
                "minimum": 1,
                "maximum": 256,
                "default": 16,
                "description": "images both models run on for the report",
            },
            "confidence_threshold": PREANNOTATION_PARAMETERS["confidence_threshold"],
            "threads": THREADS_SCHEMA,
        },
    },
    timeout_s=RUN_TIMEOUT_S,
)


def run(ctx: ProcessingContext) -> None:
    params = ctx.parameters
    source = ctx.model_version
    if source is None:
        raise RuntimeError("model-conversion runs on a model version")
    target = params["to"]
    if source.format == "onnx" and target == "onnx":
        raise ValueError(
            f"model version {source.name!r} is already ONNX: convert it to fp16 or int8"
        )
    tensorflow = source.format in TF_FORMATS
    if source.format != "onnx" and not tensorflow:
        raise ValueError(f"cannot convert {source.format} weights")
    weights = ctx.model_path()
    started = time.perf_counter()
    onnx_path = convert_tf_model(ctx, weights, source.format) if tensorflow else weights
    out = Path(tempfile.mkdtemp(prefix="darkroom-convert-")) / "model.onnx"
    if target == "onnx":
        out = onnx_path
    elif target == "fp16":
        to_fp16(onnx_path, out)
    else:
        to_int8(onnx_path, out)
    took = time.perf_counter() - started
    ctx.log.info("%s -> %s in %.1f s", source.format, target, took)

    images, origin = sample_images(ctx, params["samples"])
    ctx.log.info("comparing both models on %d %s images", len(images), origin)
    report: dict[str, Any] = {
        "conversion": f"{source.format} -> {target}",
        "seconds": round(took, 2),
        "size_bytes": {"source": weights.stat().st_size, "result": out.stat().st_size},
        "images": len(images),
        "sample": origin,
    }
    thresholds = {"confidence_threshold": params["confidence_threshold"],
                  "max_detections": MAX_DETECTIONS, "threads": params["threads"]}  # fmt: skip
    before, speed_before = timed(reference(source, weights, thresholds), images)
    converted = predictor_for(out, source, **thresholds)
    after, speed_after = timed(converted, images)
    from darkroom.inference.deviation import deviation

    report["images_per_s"] = {"source": round(speed_before, 2), "result": round(speed_after, 2)}
    report["deviation"] = deviation(before, after).as_dict()
    for line in report_lines(report):
        ctx.log.info("%s", line)
    name = params["name"] or f"{source.name}-{target}"
    version = ctx.add_model_version(out, name=name, metadata={"conversion": report})
    ctx.log.info("new model version %s (id %d) of model %s", version.name, version.id, source.model)


def reference(source: ModelVersion, weights: Path, thresholds: dict[str, Any]) -> Predictor:
    """The source model as it runs before conversion: TensorFlow for a TensorFlow model."""
    if source.format in TF_FORMATS:
        from darkroom.inference.tf_od import tensorflow_predictor

        return tensorflow_predictor(
            weights, source.format, num_classes=len(source.labels),
            confidence_threshold=thresholds["confidence_threshold"],
            max_detections=thresholds["max_detections"],
        )  # fmt: skip
    return predictor_for(weights, source, **thresholds)


def to_fp16(source: Path, out: Path) -> None:
    # onnxruntime's copy of onnxconverter-common's converter: the latter (1.16) leaves a
    # YOLOv8 graph onnxruntime refuses (a float32 Resize between float16 casts).
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    onnx.save(convert_float_to_float16(onnx.load(str(source)), keep_io_types=True), str(out))


def to_int8(source: Path, out: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Given a path, it writes a shape-inferred copy beside the source: read-only here.
    quantize_dynamic(onnx.load(str(source)), str(out), weight_type=QuantType.QUInt8)


def sample_images(ctx: ProcessingContext, count: int) -> tuple[list[np.ndarray], str]:
    """Up to `count` images of the job's dataset version, or generated ones without it."""
    import numpy as np

    if ctx.input_version is not None:
        images: list[np.ndarray] = []
        for batch in ctx.iter_assets(batch_size=min(count, 16)):
            images += [item.image for item in batch][: count - len(images)]
            if len(images) >= count:
                break
        if images:
            return images, f"of version {ctx.input_version.name}"
    rng = np.random.default_rng(0)
    generated = []
    for _ in range(count):
        image = np.full((480, 640, 3), rng.integers(0, 256, 3), np.uint8)
        for _ in range(6):  # a few solid blocks, something for a detector to look at
            x, y = rng.integers(0, 560), rng.integers(0, 400)
            image[y : y + rng.integers(20, 80), x : x + rng.integers(20, 80)] = rng.integers(
                0, 256, 3
            )
        generated.append(image)
    return generated, "generated"


def timed(predictor: Predictor, images: list[np.ndarray]) -> tuple[list[Any], float]:
    """Detections and images/s, after one warm-up image."""
    predictor.predict(images[:1])
    started = time.perf_counter()
    out = predictor.predict(images)
    took = time.perf_counter() - started
    return out, len(images) / took if took else 0.0


def report_lines(report: dict[str, Any]) -> list[str]:
    size, speed, dev = report["size_bytes"], report["images_per_s"], report["deviation"]
    return [
        f"size: {size['source'] / 1e6:.2f} MB -> {size['result'] / 1e6:.2f} MB",
        f"speed on {report['images']} {report['sample']} images: {speed['source']:.2f} -> "
        f"{speed['result']:.2f} images/s",
        f"deviation from the source: boxes up to {dev['max_box_px']:.2f} px, scores up to "
        f"{dev['max_score']:.4f}, over {dev['paired']} paired detections "
        f"({dev['only_source']} only in the source, {dev['only_result']} only in the result)",
    ]
