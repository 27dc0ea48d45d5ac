"""Import and export: round trips in every format, skipped items, hostile archives."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from tests.helpers import image_bytes, version_shapes, zip_bytes

SHAPES = {
    "a.jpg": [
        {"kind": "rectangle", "label": "cat", "bbox": [10, 5, 20, 15]},
        {"kind": "rectangle", "label": "dog", "bbox": [0.5, 0.25, 30.5, 40], "score": 0.75},
    ],
    "b.jpg": [{"kind": "polygon", "label": "cat", "points": [[1, 1], [40, 2], [20, 30]]}],
    "c.jpg": [],
}


def _new_version(api, dataset_id, name):
    r = api.post(f"/api/v1/datasets/{dataset_id}/versions", json={"name": name})
    r.raise_for_status()
    return r.json()


def _import(api, version_id, fmt, data, name="in.zip"):
    return api.post(
        f"/api/v1/versions/{version_id}/import",
        params={"format": fmt},
        files={"file": (name, data, "application/zip")},
    )


def _shapes(api, version_id):
    """{filename: sorted [(kind, label, rounded geometry, score)]} for comparison."""
    out = {}
    for filename, shapes in version_shapes(api, version_id).items():
        rows = []
        for s in shapes:
            geo = s["bbox"] or [c for p in s["points"] for c in p]
            rows.append((s["kind"], s["label"], tuple(round(v, 2) for v in geo), s["score"]))
        out[filename] = sorted(rows)
    return out


@pytest.fixture
def filled(api, version, upload):
    for i, (name, shapes) in enumerate(SHAPES.items()):
        asset = upload(version["id"], name, image_bytes(64, 48, seed=i))
        if shapes:
            api.post(
                f"/api/v1/assets/{asset['id']}/annotations", json={"shapes": shapes}
            ).raise_for_status()
    return version


@pytest.mark.parametrize("fmt", ["coco", "yolo", "voc"])
def test_export_import_round_trip(api, filled, fmt):
    r = api.get(f"/api/v1/versions/{filled['id']}/export", params={"format": fmt})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/zip"
    first = _new_version(api, filled["dataset_id"], "first")
    report = _import(api, first["id"], fmt, r.content).json()
    assert report["images_added"] == 3
    assert report["skipped_count"] == 0, report["skipped"]

    again = api.get(f"/api/v1/versions/{first['id']}/export", params={"format": fmt}).content
    second = _new_version(api, filled["dataset_id"], "second")
    _import(api, second["id"], fmt, again).raise_for_status()
    assert _shapes(api, second["id"]) == _shapes(api, first["id"])

    expected = _shapes(api, filled["id"])
    if fmt == "voc":  # VOC holds rectangles only
        expected = {k: [s for s in v if s[0] == "rectangle"] for k, v in expected.items()}
    if fmt == "yolo":  # YOLO txt holds no scores
        expected = {k: [(*s[:3], None) for s in v] for k, v in expected.items()}
    got = _shapes(api, first["id"])
    assert {k: [(*s[:2], s[3]) for s in v] for k, v in got.items()} == {
        k: [(*s[:2], s[3]) for s in v] for k, v in expected.items()
    }
    for name in expected:  # geometry equal up to YOLO's 6 decimals of normalization
        for g, e in zip(got[name], expected[name], strict=True):
            assert g[2] == pytest.approx(e[2], abs=0.01)


def test_coco_export_layout(api, filled):
    data = api.get(f"/api/v1/versions/{filled['id']}/export", params={"format": "coco"}).content
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        doc = json.loads(zf.read("annotations.json"))
    assert {"images/a.jpg", "images/b.jpg", "images/c.jpg", "annotations.json"} <= names
    assert [c["name"] for c in doc["categories"]] == ["cat", "dog"]
    assert len(doc["annotations"]) == 3


def test_coco_json_alone_attaches_to_uploaded_assets(api, version, upload):
    upload(version["id"], "a.jpg")
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "missing.jpg"}],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "bird"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [2, 2, 5, 5]},
            {"id": 3, "image_id": 9, "category_id": 1, "bbox": [1, 1, 5, 5]},
            {"id": 4, "image_id": 1, "category_id": 7, "bbox": [1, 1, 5, 5]},
        ],
    }
    r = _import(api, version["id"], "coco", json.dumps(doc).encode(), "instances.json")
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["images_matched"] == 1
    assert report["images_added"] == 0
    assert report["shapes_added"] == 2
    assert report["labels_created"] == ["bird"]
    reasons = {s["item"]: s["reason"] for s in report["skipped"]}
    assert reasons["annotation 3"] == "unknown image_id 9"
    assert reasons["annotation 4"] == "unknown category_id 7"
    assert "missing.jpg" in reasons
    assert report["skipped_count"] == 3


def test_invalid_coco_json_is_422(api, version):
    r = _import(api, version["id"], "coco", b"{not json", "x.json")
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_coco"


def test_yolo_import_with_data_yaml_and_bad_lines(api, version):
    data = zip_bytes(
        {
            "data.yaml": b"names:\n  1: dog\n  0: cat\n",
            "images/train/x.jpg": image_bytes(100, 50),
            "labels/train/x.txt": b"0 0.5 0.5 0.2 0.4\n1 0.1 0.1 0.1 0.1\n7 0.5 0.5 0.1 0.1\nfoo\n",
            "images/train/y.png": image_bytes(10, 10, "PNG"),
        }
    )
    report = _import(api, version["id"], "yolo", data).json()
    assert report["images_added"] == 2
    assert report["shapes_added"] == 2
    assert report["skipped_count"] == 2
    shapes = _shapes(api, version["id"])
    assert shapes["train/x.jpg"][0] == ("rectangle", "cat", (40.0, 15.0, 20.0, 20.0), None)
    assert shapes["train/y.png"] == []


def test_yolo_without_class_names_is_422(api, version):
    data = zip_bytes({"images/x.jpg": image_bytes()})
    r = _import(api, version["id"], "yolo", data)
    assert r.status_code == 422
    assert "class names" in r.json()["error"]["message"]


def test_yolo_needs_a_zip(api, version):
    r = _import(api, version["id"], "yolo", b"0 0.5 0.5 0.1 0.1\n", "x.txt")
    assert r.status_code == 415


def test_zip_with_parent_paths_is_refused_before_storing(api, version):
    data = zip_bytes(
        {"images/ok.jpg": image_bytes(), "../../evil.jpg": image_bytes(), "classes.txt": b"cat\n"}
    )
    r = _import(api, version["id"], "yolo", data)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "unsafe_archive"
    assert api.get(f"/api/v1/versions/{version['id']}/assets").json()["items"] == []


def test_decompression_bomb_is_refused(api, version):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("classes.txt", b"cat\n")
        zf.writestr("images/bomb.jpg", b"\0" * (300 * 1024 * 1024))
    r = _import(api, version["id"], "yolo", out.getvalue())
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "archive_too_large"


def test_corrupt_image_in_archive_is_skipped_with_reason(api, version):
    data = zip_bytes(
        {
            "classes.txt": b"cat\n",
            "images/good.jpg": image_bytes(),
            "images/bad.jpg": b"not an image at all",
        }
    )
    report = _import(api, version["id"], "yolo", data).json()
    assert report["images_added"] == 1
    assert report["skipped"] == [
        {"item": "bad.jpg", "reason": "bad.jpg: not an image darkroom can read"}
    ]


def test_voc_import_skips_unknown_images(api, version):
    xml = (
        b"<annotation><filename>p.jpg</filename><object><name>cat</name>"
        b"<bndbox><xmin>1</xmin><ymin>2</ymin><xmax>11</xmax><ymax>22</ymax></bndbox></object>"
        b"</annotation>"
    )
    data = zip_bytes(
        {
            "JPEGImages/p.jpg": image_bytes(),
            "Annotations/p.xml": xml,
            "Annotations/q.xml": xml.replace(b"p.jpg", b"q.jpg"),
            "Annotations/broken.xml": b"<annotation>",
        }
    )
    report = _import(api, version["id"], "voc", data).json()
    assert report["images_added"] == 1
    assert report["shapes_added"] == 1
    assert report["skipped_count"] == 2
    # the VOC devkit's 1-based inclusive pixels: xmin 1..xmax 11 is x 0, width 11
    assert _shapes(api, version["id"])["p.jpg"] == [
        ("rectangle", "cat", (0.0, 1.0, 11.0, 21.0), None)
    ]


def test_unknown_format_is_422(api, version):
    r = _import(api, version["id"], "labelme", b"{}")
    assert r.status_code == 422


def test_yolo_export_writes_a_polygon_of_two_parts_as_one_object(api, version, upload):
    """One COCO object of two parts is one YOLO row (Ultralytics' converter joins them too),
    whose extent is both parts'; a box stays a box row."""
    upload(version["id"], "a.jpg", image_bytes(100, 80))
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
        "categories": [{"id": 1, "name": "cat"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [10, 10, 80, 60],
             "segmentation": [[10, 10, 30, 10, 30, 30], [60, 50, 90, 50, 90, 70, 60, 70]]},
            {"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [0, 0, 5, 5]},
        ],
    }  # fmt: skip
    r = _import(api, version["id"], "coco", json.dumps(doc).encode(), name="a.json")
    assert r.status_code == 200, r.text
    data = api.get(f"/api/v1/versions/{version['id']}/export", params={"format": "yolo"}).content
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        rows = [line.split() for line in zf.read("labels/a.txt").decode().splitlines()]
    polygon = next(row for row in rows if len(row) > 5)
    assert len(rows) == 2
    xs = [float(v) * 100 for v in polygon[1::2]]
    ys = [float(v) * 80 for v in polygon[2::2]]
    assert (min(xs), min(ys), max(xs), max(ys)) == pytest.approx((10, 10, 90, 70))
    assert {(x, y) for x, y in zip(xs, ys, strict=True)} >= {(30, 30), (90, 70)}


def test_a_voc_attribute_named_parts_is_reported_not_a_crash(api, version):
    """`parts` holds an object's <part>s; a CVAT attribute of that name (a text) is not kept,
    and the report says so (it was a 500)."""
    xml = (
        b"<annotation><filename>a.jpg</filename><object><name>cat</name><bndbox>"
        b"<xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox><attributes>"
        b"<attribute><name>parts</name><value>two</value></attribute><attribute>"
        b"<name>color</name><value>red</value></attribute></attributes></object></annotation>"
    )
    data = zip_bytes({"Annotations/a.xml": xml, "JPEGImages/a.jpg": image_bytes()})
    r = _import(api, version["id"], "voc", data)
    assert r.status_code == 200, r.text
    assert [s["item"] for s in r.json()["skipped"]] == ["Annotations/a.xml object 0"]
    assert "attribute 'parts'" in r.json()["skipped"][0]["reason"]
    (shape,) = version_shapes(api, version["id"])["a.jpg"]
    assert shape["attributes"] == {"color": "red"}
