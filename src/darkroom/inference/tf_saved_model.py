"""TensorFlow Object Detection API SavedModels, uploaded as a zip: checked, unpacked, converted.

A SavedModel is a folder (`saved_model.pb`, `variables/`, maybe `assets/`), so it travels as a
zip holding that folder at its root or one level down (`exported/saved_model/...`). The
registry reads `saved_model.pb` without TensorFlow, with the frozen graphs' wire-format reader:
its `serve` graph's `serving_default` signature must take one uint8 image batch and answer the
four `detection_*` outputs, by the names TF-OD exporters give them. The zip is checked by
`SafeZip` (no `..`, no links, size and ratio limits) before anything in it is read.

Conversion (`convert_saved_model`) runs in a run's sandbox with tf2onnx's SavedModel loader; the
ONNX graph's input is renamed `image_tensor` and its outputs keep their signature names, so the
converted model is an ONNX TF-OD model like a converted frozen graph.
"""

from __future__ import annotations

import posixpath
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from darkroom.formats.archive import SafeZip
from darkroom.inference.tf_graph import (
    TF_OD_INPUT,
    TF_OD_OUTPUTS,
    fields,
    import_tensorflow,
    scan_nodes,
)

__all__ = [
    "SAVED_MODEL_PB",
    "SavedModelInfo",
    "convert_saved_model",
    "open_saved_model_zip",
    "read_saved_model",
    "read_saved_model_info",
    "unpack_saved_model",
]

SAVED_MODEL_PB = "saved_model.pb"
SERVING_TAG = b"serve"
SERVING_SIGNATURE = "serving_default"
DT_UINT8 = 4
MAX_UNPACKED_BYTES = 8 * 1024**3
MAX_RATIO = 200
UNREADABLE = (zipfile.BadZipFile, zlib.error, EOFError, OSError)


@dataclass(frozen=True, slots=True)
class SavedModelInfo:
    root: str  # the SavedModel's folder inside the zip ("" at its root)
    input_key: str  # the serving signature's input name (`inputs`, `input_tensor`, ...)
    nodes: int
    input_size: tuple[int, int] | None  # (height, width) its preprocessor resizes to


@contextmanager
def open_saved_model_zip(path: Path) -> Iterator[tuple[SafeZip, str]]:
    """The checked zip and the folder its one `saved_model.pb` is in; ValueError otherwise."""
    with path.open("rb") as fp:
        archive = SafeZip(fp, max_total_bytes=MAX_UNPACKED_BYTES, max_ratio=MAX_RATIO)
        try:
            found = [p for p in archive.paths if posixpath.basename(p) == SAVED_MODEL_PB]
            found = [p for p in found if p.count("/") <= 2]
            if len(found) != 1:
                where = "none" if not found else ", ".join(found[:5])
                raise ValueError(
                    f"a SavedModel zip holds one {SAVED_MODEL_PB} at its root or at most two "
                    f"folders down ({where})"
                )
            yield archive, posixpath.dirname(found[0])
        finally:
            archive.close()


def _map_entries(data: bytes) -> dict[str, bytes]:
    """A protobuf map<string, message> field's entries: key (field 1) -> value (field 2)."""
    entry = {n: v for n, _, v in fields(data)}
    key, value = entry.get(1, b""), entry.get(2, b"")
    if not isinstance(key, bytes) or not isinstance(value, bytes):
        raise ValueError("malformed map entry")
    return {key.decode("utf-8", "replace"): value}


def _tensor_info(data: bytes) -> tuple[int, list[int] | None]:
    """A TensorInfo's dtype and shape (-1 for unknown dims; None for an unknown rank)."""
    dtype, dims, unknown_rank = 0, [], False
    for n, _, v in fields(data):
        if n == 2 and isinstance(v, int):
            dtype = v
        elif n == 3 and isinstance(v, bytes):
            for m, _, w in fields(v):
                if m == 2 and isinstance(w, bytes):
                    size = next((x for k, _, x in fields(w) if k == 1 and isinstance(x, int)), 0)
                    dims.append(size - (1 << 64) if size >= 1 << 63 else size)
                elif m == 3 and w:
                    unknown_rank = True
    return dtype, None if unknown_rank else dims


def read_saved_model(data: bytes) -> tuple[str, int, tuple[int, int] | None]:
    """Checks a `saved_model.pb`: a `serve` graph whose serving signature is a TF-OD one.
    Answers its input's name, its node count and the size its preprocessor resizes to; raises
    ValueError saying what is missing."""
    try:
        graphs = [v for n, _, v in fields(data) if n == 2 and isinstance(v, bytes)]
        for graph in graphs:
            parts: dict[int, list[bytes]] = {}
            for n, _, v in fields(graph):
                if isinstance(v, bytes):
                    parts.setdefault(n, []).append(v)
            tags = [t for info in parts.get(1, []) for m, _, t in fields(info) if m == 4]
            if SERVING_TAG not in tags and len(graphs) > 1:
                continue
            signatures: dict[str, bytes] = {}
            for entry in parts.get(5, []):
                signatures.update(_map_entries(entry))
            signature = signatures.get(SERVING_SIGNATURE)
            if signature is None:
                raise ValueError(
                    f"no {SERVING_SIGNATURE!r} signature (it has {sorted(signatures) or 'none'})"
                )
            inputs: dict[str, bytes] = {}
            outputs: dict[str, bytes] = {}
            for n, _, v in fields(signature):
                if n in (1, 2) and isinstance(v, bytes):
                    (inputs if n == 1 else outputs).update(_map_entries(v))
            names, size = scan_nodes(parts.get(2, [b""])[0], functions=True)
            break
        else:
            raise ValueError("no graph tagged 'serve'")
    except (ValueError, IndexError) as exc:
        raise ValueError(f"not a TensorFlow SavedModel ({exc})") from None
    if len(inputs) != 1:
        raise ValueError(f"its serving signature takes {len(inputs)} inputs, not one image batch")
    [(key, info)] = inputs.items()
    dtype, shape = _tensor_info(info)
    if dtype != DT_UINT8 or (shape is not None and len(shape) != 4):
        raise ValueError(f"its input {key!r} is not a uint8 image batch [N, H, W, 3]")
    missing = [n for n in TF_OD_OUTPUTS if n not in outputs]
    if missing:
        raise ValueError(
            "not a TensorFlow Object Detection API model: its serving signature has no output "
            + ", ".join(repr(n) for n in missing)
        )
    return key, len(names), size


def read_saved_model_info(path: Path) -> SavedModelInfo:
    """Checks a SavedModel zip (the archive, then its serving signature)."""
    with open_saved_model_zip(path) as (archive, root):
        try:
            data = archive.read(posixpath.join(root, SAVED_MODEL_PB))
        except UNREADABLE as exc:
            raise ValueError(f"unreadable {SAVED_MODEL_PB} ({exc})") from None
    key, nodes, size = read_saved_model(data)
    return SavedModelInfo(root=root, input_key=key, nodes=nodes, input_size=size)


def unpack_saved_model(path: Path, dest: Path) -> Path:
    """The SavedModel folder of the zip at `path`, written under `dest`; answers that folder."""
    folder = dest / "saved_model"
    with open_saved_model_zip(path) as (archive, root):
        for name in archive.paths:
            relative = posixpath.relpath(name, root) if root else name
            if relative.startswith("../"):
                continue  # beside the SavedModel: not part of it
            target = folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(name))
    return folder


def convert_saved_model(path: Path, out: Path, opset: int = 17) -> float:
    """Converts a SavedModel zip to ONNX at `out` (input `image_tensor`, the four detection
    outputs by name); returns the seconds it took. Needs the tensorflow extra."""

    started = time.perf_counter()
    tf, _ = import_tensorflow()
    from tf2onnx import tf_loader
    from tf2onnx.convert import _convert_common

    with tempfile.TemporaryDirectory(prefix="darkroom-savedmodel-") as tmp:
        folder = unpack_saved_model(path, Path(tmp))
        graph_def, inputs, outputs, tables, renames = tf_loader.from_saved_model(
            str(folder), None, None, tag=None, signatures=[SERVING_SIGNATURE],
            return_initialized_tables=True, return_tensors_to_rename=True,
        )  # fmt: skip
    renames = {**renames, inputs[0]: TF_OD_INPUT}
    outputs = [name for name in outputs if renames.get(name) in TF_OD_OUTPUTS]
    with tf.device("/cpu:0"):
        _convert_common(
            graph_def, name="saved_model", opset=opset, input_names=inputs,
            output_names=outputs, tensors_to_rename=renames, initialized_tables=tables,
            output_path=str(out),
        )  # fmt: skip
    return time.perf_counter() - started
