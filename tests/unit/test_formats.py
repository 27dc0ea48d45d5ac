"""Format parsers and writers, and the archive guard, without a database."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from darkroom.domain.annotations import ShapeIn
from darkroom.errors import InvalidInput, PayloadTooLarge
from darkroom.formats import coco, voc, yolo
from darkroom.formats.archive import SafeZip
from darkroom.formats.records import ExportImage, Skipped
from tests.helpers import zip_bytes


def _zip(entries: dict[str, bytes]) -> SafeZip:
    return SafeZip(io.BytesIO(zip_bytes(entries)), max_total_bytes=10**9, max_ratio=100)


def test_coco_polygons_and_rle():
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg"}],
        "categories": [{"id": 3, "name": "cat"}],
        "annotations": [
            {
                "image_id": 1,
                "category_id": 3,
                "segmentation": [[0, 0, 4, 0, 4, 4], [1, 1, 2, 2]],
                "bbox": [0, 0, 4, 4],
            },
            {
                "image_id": 1,
                "category_id": 3,
                "segmentation": {"counts": "xyz", "size": [4, 4]},
                "bbox": [1, 1, 2, 2],
            },
        ],
    }
    parsed = coco.parse_coco(json.dumps(doc).encode())
    kinds = [s.kind for s in parsed.images[0].shapes]
    assert kinds == ["polygon", "mask"]  # an RLE is kept as a mask, with its box
    assert parsed.images[0].shapes[1].mask == {"counts": "xyz", "size": [4, 4]}
    assert [s.reason for s in parsed.skipped] == ["polygon part with fewer than 3 points"]


def test_coco_without_images_list_is_invalid():
    with pytest.raises(InvalidInput, match="'images' list"):
        coco.parse_coco(b'{"annotations": []}')


def test_coco_writer_has_bbox_and_area_for_polygons():
    img = ExportImage("a.jpg", 10, 10, [ShapeIn("polygon", "cat", points=[[0, 0], [4, 0], [4, 4]])])
    doc = json.loads(coco.write_coco(["cat"], [img]))
    ann = doc["annotations"][0]
    assert ann["bbox"] == [0, 0, 4, 4]
    assert ann["area"] == 8
    assert ann["segmentation"] == [[0, 0, 4, 0, 4, 4]]


def test_yolo_names_from_list_and_label_paths():
    archive = _zip(
        {
            "data.yaml": b"names: [a, b]\n",
            "images/val/x.jpg": b"",
            "labels/val/x.txt": b"1 0.5 0.5 1 1\n",
        }
    )
    parsed, files = yolo.parse_yolo(archive)
    assert parsed.labels == ["a", "b"]
    assert files == {"val/x.jpg": "images/val/x.jpg"}
    assert parsed.images[0].shapes[0].label == "b"
    assert parsed.images[0].shapes[0].bbox == [0.0, 0.0, 1.0, 1.0]
    assert yolo.label_path_for("data/images/train/a.b.jpg") == "data/labels/train/a.b.txt"


def test_yolo_label_writer_normalizes():
    img = ExportImage("a.jpg", 200, 100, [ShapeIn("rectangle", "b", bbox=[50, 25, 100, 50])])
    assert (
        yolo.write_yolo_label(img, {"a": 0, "b": 1}) == b"1 0.500000 0.500000 0.500000 0.500000\n"
    )


def test_voc_rejects_entity_expansion():
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
        b"<annotation><filename>&a;</filename></annotation>"
    )
    parsed, _ = voc.parse_voc(_zip({"a.xml": bomb}))
    assert parsed.skipped[0].reason.startswith("unreadable XML")


@pytest.mark.parametrize("name", ["../x.jpg", "/abs/x.jpg", "a/../../x.jpg", "C:/x.jpg"])
def test_archive_refuses_escaping_entries(name):
    with pytest.raises(InvalidInput) as exc:
        _zip({name: b"x"})
    assert exc.value.code == "unsafe_archive"


def test_archive_refuses_symlinks():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        info = zipfile.ZipInfo("link.jpg")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(InvalidInput, match="symbolic link"):
        SafeZip(io.BytesIO(out.getvalue()), max_total_bytes=10**9, max_ratio=100)


def test_archive_total_size_limit():
    with pytest.raises(PayloadTooLarge):
        SafeZip(
            io.BytesIO(zip_bytes({"a": b"x" * 100, "b": b"y" * 100})),
            max_total_bytes=150,
            max_ratio=100,
        )


def test_archive_find_by_prefix_and_base_name():
    archive = _zip({"images/a.jpg": b"1", "deep/dir/b.jpg": b"2", "x/c.jpg": b"3", "y/c.jpg": b"4"})
    assert archive.find("a.jpg", "images") == "images/a.jpg"
    assert archive.find("b.jpg") == "deep/dir/b.jpg"
    assert archive.find("c.jpg") is None  # ambiguous
    assert archive.read("images/a.jpg") == b"1"


def test_coco_stuff_is_skipped_beside_object_files_and_read_alone():
    """COCO's stuff file holds background regions: beside the instances file it would add
    boxes the instances file does not have; on its own it is read as masks."""
    stuff = {
        "images": [{"id": 1, "file_name": "a.jpg"}],
        "categories": [{"id": 1, "name": "sky"}],
        "annotations": [
            {
                "id": 7,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "bbox": [0, 0, 2, 2],
                "segmentation": {"size": [4, 4], "counts": [0, 2, 2, 2, 10]},
            }
        ],
    }
    instances = {
        "images": [{"id": 1, "file_name": "a.jpg"}],
        "categories": [{"id": 2, "name": "cat"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 2, "bbox": [1, 1, 2, 2]}],
    }
    files = {"annotations/stuff_train.json": json.dumps(stuff).encode(),
             "annotations/instances_train.json": json.dumps(instances).encode()}  # fmt: skip
    both, _ = coco.parse_coco_archive(_zip(files))
    assert [(s.kind, s.label) for s in both.images[0].shapes] == [("rectangle", "cat")]
    assert both.labels == ["cat"]
    assert both.skipped == [Skipped("annotations/stuff_train.json", coco.STUFF_SKIPPED)]
    alone, _ = coco.parse_coco_archive(
        _zip({"stuff_train.json": files["annotations/stuff_train.json"]})
    )
    assert [(s.kind, s.label) for s in alone.images[0].shapes] == [("mask", "sky")]
