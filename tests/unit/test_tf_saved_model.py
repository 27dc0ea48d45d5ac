"""TF-OD SavedModels in a zip, read without TensorFlow: both layouts of the real model are
understood, and hostile or wrong zips raise ValueError or the archive's own 4xx errors only."""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path

import pytest

from darkroom.errors import InvalidInput
from darkroom.inference.tf_saved_model import (
    read_saved_model,
    read_saved_model_info,
    unpack_saved_model,
)
from tests.engine.test_tf_preannotation import PEDESTRIAN
from tests.helpers import zip_bytes
from tests.unit.test_inference_models import model_path


def write(tmp_path: Path, entries: dict[str, bytes]) -> Path:
    path = tmp_path / "model.zip"
    path.write_bytes(zip_bytes(entries))
    return path


@pytest.mark.parametrize(("layout", "key"), [("tf1", "inputs"), ("tf2", "input_tensor")])
def test_both_layouts_give_their_input_and_resize(saved_model_zips, layout, key):
    info = read_saved_model_info(saved_model_zips[layout])
    assert (info.root, info.input_key, info.input_size) == ("saved_model", key, (300, 300))
    assert info.nodes >= 2790  # the frozen graph's nodes (TF2: in its function library)


def test_unpack_writes_the_saved_model_folder_only(saved_models, tmp_path):
    pb = (saved_models["tf2"] / "saved_model.pb").read_bytes()
    index = (saved_models["tf2"] / "variables" / "variables.index").read_bytes()
    zipped = write(tmp_path, {"export/model/saved_model.pb": pb,
                              "export/model/variables/variables.index": index,
                              "export/README.md": b"beside it"})  # fmt: skip
    assert read_saved_model_info(zipped).root == "export/model"
    folder = unpack_saved_model(zipped, tmp_path / "out")
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "saved_model.pb", "variables/variables.index"]  # fmt: skip
    assert not (tmp_path / "out" / "README.md").exists()


@pytest.mark.parametrize(
    ("entries", "words"),
    [
        ({"model/variables/x": b"1"}, "one saved_model.pb"),
        ({"a/saved_model.pb": b"x", "b/saved_model.pb": b"x"}, "one saved_model.pb"),
        ({"a/b/c/d/saved_model.pb": b"x"}, "one saved_model.pb"),
        ({"saved_model.pb": b"\xff\xff\xff"}, "not a TensorFlow SavedModel"),
        ({"saved_model.pb": b""}, "no graph tagged 'serve'"),
    ],
)
def test_wrong_zips_say_what_is_wrong(tmp_path, entries, words):
    with pytest.raises(ValueError, match=words):
        read_saved_model_info(write(tmp_path, entries))


def test_a_frozen_graph_named_saved_model_pb_is_refused(tmp_path):
    graph = model_path(*PEDESTRIAN).read_bytes()
    with pytest.raises(ValueError, match="not a TensorFlow SavedModel"):
        read_saved_model_info(write(tmp_path, {"saved_model.pb": graph}))


def test_entries_escaping_the_archive_are_refused_before_reading(tmp_path):
    for name in ("../saved_model.pb", "/etc/saved_model.pb"):
        with pytest.raises(InvalidInput, match="escapes the archive"):
            read_saved_model_info(write(tmp_path, {name: b"x"}))
    link = zipfile.ZipInfo("saved_model.pb")
    link.external_attr = 0o120777 << 16  # a symbolic link
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as archive:
        archive.writestr(link, "/etc/passwd")
    (tmp_path / "link.zip").write_bytes(raw.getvalue())
    with pytest.raises(InvalidInput, match="symbolic link"):
        read_saved_model_info(tmp_path / "link.zip")


def test_hostile_saved_model_bytes_raise_value_error_only(saved_models):
    real = (saved_models["tf1"] / "saved_model.pb").read_bytes()
    rng = random.Random(11)
    for _ in range(300):
        kind = rng.randrange(3)
        if kind == 0:
            data = rng.randbytes(rng.randrange(1, 400))
        elif kind == 1:
            data = real[: rng.randrange(1, 20_000)]
        else:
            data = bytearray(real[:20_000])
            for _ in range(5):
                data[rng.randrange(len(data))] = rng.randrange(256)
            data = bytes(data)
        with pytest.raises(ValueError, match=r"SavedModel|signature|input|output"):
            read_saved_model(data)


def test_a_signature_without_the_detection_outputs_is_refused(saved_models):
    real = (saved_models["tf1"] / "saved_model.pb").read_bytes()
    # The signature's output key renamed: same length, so the protobuf stays well formed.
    broken = real.replace(b"detection_scores", b"detection_SCORES")
    assert broken != real
    with pytest.raises(ValueError, match="no output 'detection_scores'"):
        read_saved_model(broken)
