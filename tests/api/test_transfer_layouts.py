"""Imports of the layouts other tools write (COCO, Roboflow, Ultralytics, CVAT, the VOC devkit),
what each keeps, exports with unique entries that read back, and re-imports.

Each test goes through the HTTP API; COCO exports are also read by pycocotools."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from darkroom.web.auth import COOKIE
from tests.conftest import ADMIN_TOKEN
from tests.helpers import image_bytes, version_shapes, zip_bytes

W, H = 64, 48


def _dataset(api, name="peers"):
    ds = api.post("/api/v1/datasets", json={"name": name}).json()
    return ds["id"]


def _new_version(api, dataset_id, name):
    r = api.post(f"/api/v1/datasets/{dataset_id}/versions", json={"name": name})
    r.raise_for_status()
    return r.json()["id"]


def _import(api, version_id, fmt, data, name="in.zip", **params):
    r = api.post(
        f"/api/v1/versions/{version_id}/import",
        params={"format": fmt, **params},
        files={"file": (name, data, "application/zip")},
    )
    assert r.status_code == 200, r.text
    return r.json()


def _export(api, version_id, fmt):
    r = api.get(f"/api/v1/versions/{version_id}/export", params={"format": fmt})
    assert r.status_code == 200, r.text
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        names = [i.filename for i in zf.infolist()]
    assert len(names) == len(set(names)), f"duplicate entries: {names}"
    return r.content


def _shapes(api, version_id):
    """{asset name: [shape dicts without ids]}, sorted for comparison."""
    return {
        name: sorted(({k: v for k, v in s.items() if k not in ("id", "label_id")} for s in shapes),
                     key=json.dumps)
        for name, shapes in version_shapes(api, version_id).items()
    }  # fmt: skip


def _labels(api, version_id):
    return {x["name"]: x for x in api.get(f"/api/v1/versions/{version_id}/labels").json()["items"]}


def _rle(box):
    """A COCO compressed RLE of a W x H image with `box` (x, y, w, h) set."""
    m = np.zeros((H, W), dtype=np.uint8)
    x, y, w, h = box
    m[y : y + h, x : x + w] = 1
    rle = mask_utils.encode(np.asfortranarray(m))
    return {"size": [H, W], "counts": rle["counts"].decode()}


KEYPOINT_NAMES = ["nose", "left_eye", "right_eye"]


def _coco_split_files():
    """COCO's own layout: instances + person_keypoints of one split, and a captions file."""
    image = {"id": 397133, "file_name": "1.jpg", "width": W, "height": H}
    instances = {
        "images": [image],
        "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"},
                       {"id": 0, "name": "background-thing"}],
        "annotations": [
            {"id": 10, "image_id": 397133, "category_id": 1, "iscrowd": 0,
             "segmentation": [[2, 2, 20, 2, 20, 20], [30, 30, 40, 30, 40, 40, 30, 40]],
             "bbox": [2, 2, 38, 38], "area": 262},
            {"id": 11, "image_id": 397133, "category_id": 18, "iscrowd": 1,
             "segmentation": _rle((5, 6, 10, 8)), "bbox": [5, 6, 10, 8], "area": 80},
            {"id": 12, "image_id": 397133, "category_id": 0, "bbox": [1, 1, 5, 5],
             "attributes": {"occluded": True, "color": "red"}},
        ],
    }  # fmt: skip
    keypoints = {
        "images": [image],
        "categories": [{"id": 1, "name": "person", "keypoints": KEYPOINT_NAMES,
                        "skeleton": [[1, 2], [1, 3]]}],
        "annotations": [
            {"id": 10, "image_id": 397133, "category_id": 1, "iscrowd": 0,
             "segmentation": [[2, 2, 20, 2, 20, 20], [30, 30, 40, 30, 40, 40, 30, 40]],
             "bbox": [2, 2, 38, 38], "num_keypoints": 2,
             "keypoints": [10, 5, 2, 8, 4, 1, 0, 0, 0]},
        ],
    }  # fmt: skip
    captions = {
        "images": [image],
        "annotations": [{"id": 1, "image_id": 397133, "caption": "a person and a dog"}],
    }
    return {
        "annotations/instances_train.json": json.dumps(instances).encode(),
        "annotations/person_keypoints_train.json": json.dumps(keypoints).encode(),
        "annotations/captions_train.json": json.dumps(captions).encode(),
        "train/1.jpg": image_bytes(W, H),
    }


def test_coco_instances_keypoints_and_captions_of_one_split(api, tmp_path):
    v = _new_version(api, _dataset(api), "coco")
    report = _import(api, v, "coco", zip_bytes(_coco_split_files()))
    assert report["images_added"] == 1
    assert report["shapes_added"] == 3  # one object per annotation id, not one per file
    assert report["skipped"] == [{
        "item": "annotations/captions_train.json",
        "reason": "COCO captions is not supported; darkroom imports object detection, "
                  "segmentation and keypoints files",
    }]  # fmt: skip
    shapes = _shapes(api, v)["train/1.jpg"]
    person = next(s for s in shapes if s["label"] == "person")
    assert person["kind"] == "polygon"
    assert person["rings"] == [
        [[2, 2], [20, 2], [20, 20]],
        [[30, 30], [40, 30], [40, 40], [30, 40]],
    ]
    assert person["keypoints"] == [[10, 5, 2], [8, 4, 1], [0, 0, 0]]
    crowd = next(s for s in shapes if s["label"] == "dog")
    assert crowd["kind"] == "mask"
    assert crowd["attributes"] == {"iscrowd": 1}
    assert crowd["bbox"] == [5, 6, 10, 8]
    thing = next(s for s in shapes if s["label"] == "background-thing")
    assert thing["attributes"] == {"occluded": True, "color": "red"}
    labels = _labels(api, v)
    assert {n: x["external_id"] for n, x in labels.items()} == {
        "person": 1, "dog": 18, "background-thing": 0
    }  # fmt: skip
    assert labels["person"]["keypoints"] == {"names": KEYPOINT_NAMES, "skeleton": [[1, 2], [1, 3]]}

    # pycocotools reads the export as written: the same ids, one object per annotation
    data = _export(api, v, "coco")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        (tmp_path / "coco.json").write_bytes(zf.read("annotations.json"))
    gt = COCO(str(tmp_path / "coco.json"))
    assert sorted(gt.getCatIds()) == [0, 1, 18]
    assert gt.getImgIds() == [397133]
    assert gt.loadCats(1)[0]["keypoints"] == KEYPOINT_NAMES
    anns = {gt.loadCats(a["category_id"])[0]["name"]: a for a in gt.loadAnns(gt.getAnnIds())}
    assert len(anns) == 3
    assert anns["person"]["keypoints"] == [10, 5, 2, 8, 4, 1, 0, 0, 0]
    assert anns["person"]["num_keypoints"] == 2
    assert gt.annToMask(anns["person"]).sum() > 0
    assert anns["dog"]["iscrowd"] == 1
    assert gt.annToMask(anns["dog"]).sum() == 80  # the crowd region's pixels, exactly
    assert anns["dog"]["area"] == 80

    again = _new_version(api, _dataset(api, "again"), "coco")
    assert _import(api, again, "coco", data)["skipped_count"] == 0
    assert _shapes(api, again) == _shapes(api, v)


def test_coco_json_alone_unsupported_tasks_are_named(api, version):
    captions = {"images": [], "annotations": [{"id": 1, "image_id": 1, "caption": "x"}]}
    segments = {"image_id": 1, "file_name": "1.png", "segments_info": []}
    panoptic = {"images": [], "categories": [], "annotations": [segments]}
    for doc, task in ((captions, "captions"), (panoptic, "panoptic segmentation")):
        r = api.post(
            f"/api/v1/versions/{version['id']}/import",
            params={"format": "coco"},
            files={"file": ("x.json", json.dumps(doc).encode(), "application/json")},
        )
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "unsupported_coco_task"
        assert f"COCO {task}" in r.json()["error"]["message"]


def test_coco_json_alone_matches_like_the_zip_and_creates_no_labels_for_nothing(
    api, version, upload
):
    upload(version["id"], "val2017/7.jpg")
    doc = {
        "images": [{"id": 7, "file_name": "7.jpg"}],
        "categories": [{"id": 5, "name": "bird"}],
        "annotations": [{"id": 1, "image_id": 7, "category_id": 5, "bbox": [1, 1, 5, 5]}],
    }
    r = _import(api, version["id"], "coco", json.dumps(doc).encode(), "x.json")
    assert (r["images_matched"], r["shapes_added"], r["labels_created"]) == (1, 1, ["bird"])
    doc["images"][0]["file_name"] = "nowhere.jpg"
    doc["categories"][0]["name"] = "fish"
    r = _import(api, version["id"], "coco", json.dumps(doc).encode(), "x.json")
    assert (r["images_matched"], r["shapes_added"], r["labels_created"]) == (0, 0, [])
    assert "fish" not in _labels(api, version["id"])


def test_yolo_splits_keep_their_folders(api):
    v = _new_version(api, _dataset(api), "yolo")
    data = zip_bytes({
        "data.yaml": b"names: [cat, dog]\n",
        # Roboflow: <split>/images + <split>/labels
        "train/images/1.jpg": image_bytes(W, H, seed=1),
        "valid/images/1.jpg": image_bytes(W, H, seed=2),
        "train/labels/1.txt": b"0 0.5 0.5 0.25 0.25\n",
        "valid/labels/1.txt": b"1 0.25 0.25 0.125 0.125\n",
        # Ultralytics: images/<split> + labels/<split>, only val labelled
        "images/train/2.jpg": image_bytes(W, H, seed=3),
        "images/val/2.jpg": image_bytes(W, H, seed=4),
        "labels/val/2.txt": b"0 0.5 0.5 0.5 0.5\n",
        "labels/train/ghost.txt": b"0 0.5 0.5 0.5 0.5\n",
    })  # fmt: skip
    report = _import(api, v, "yolo", data)
    assert report["images_added"] == 4
    assert report["skipped"] == [
        {"item": "labels/train/ghost.txt", "reason": "label file without an image of the same name"}
    ]
    shapes = _shapes(api, v)
    assert {n: [s["label"] for s in x] for n, x in shapes.items()} == {
        "train/1.jpg": ["cat"], "valid/1.jpg": ["dog"], "train/2.jpg": [], "val/2.jpg": ["cat"],
    }  # fmt: skip
    assert shapes["train/1.jpg"][0]["bbox"] == pytest.approx([24, 18, 16, 12])


def test_yolo_pose_rows_are_boxes_with_keypoints(api):
    v = _new_version(api, _dataset(api), "pose")
    data = zip_bytes({
        "data.yaml": b"names: {0: person}\nkpt_shape: [3, 2]\n",
        "images/a.jpg": image_bytes(W, H),
        "labels/a.txt": b"0 0.5 0.5 0.5 0.5 0.25 0.25 0.5 0.5 0.75 0.75\n",
    })  # fmt: skip
    assert _import(api, v, "yolo", data)["shapes_added"] == 1
    (shape,) = _shapes(api, v)["a.jpg"]
    assert shape["kind"] == "rectangle"
    assert shape["keypoints"] == [[16, 12, 2], [32, 24, 2], [48, 36, 2]]

    exported = _export(api, v, "yolo")
    with zipfile.ZipFile(io.BytesIO(exported)) as zf:
        assert b"kpt_shape:\n- 3\n- 3" in zf.read("data.yaml")
        assert len(zf.read("labels/a.txt").split()) == 1 + 4 + 9
    again = _new_version(api, _dataset(api, "again"), "pose")
    _import(api, again, "yolo", exported)
    got = _shapes(api, again)["a.jpg"][0]["keypoints"]
    assert np.allclose(got, shape["keypoints"], atol=0.001)


def test_yolo_images_and_annotations_folders(api):
    v = _new_version(api, _dataset(api), "yolo")
    data = zip_bytes({
        "obj.names": b"cat\ndog\n",
        "Images/a.jpg": image_bytes(W, H),
        "Annotations/a.txt": b"0 0.5 0.5 0.25 0.25\n1 0.25 0.25 0.25 0.25\n",
    })  # fmt: skip
    report = _import(api, v, "yolo", data)
    assert (report["shapes_added"], report["skipped_count"]) == (2, 0)


def test_voc_devkit_masks_are_not_images_and_flags_are_kept(api):
    v = _new_version(api, _dataset(api), "voc")
    xml = b"""<annotation><folder>VOC2012</folder><filename>2007_000001.jpg</filename>
      <object><name>person</name><pose>Left</pose><truncated>1</truncated>
        <difficult>1</difficult><occluded>0</occluded>
        <bndbox><xmin>3</xmin><ymin>4</ymin><xmax>20</xmax><ymax>30</ymax></bndbox></object>
    </annotation>"""
    data = zip_bytes({
        "VOC2012/JPEGImages/2007_000001.jpg": image_bytes(W, H),
        "VOC2012/SegmentationClass/2007_000001.png": image_bytes(W, H, "PNG"),
        "VOC2012/SegmentationObject/2007_000001.png": image_bytes(W, H, "PNG"),
        "VOC2012/Annotations/2007_000001.xml": xml,
    })  # fmt: skip
    report = _import(api, v, "voc", data)
    assert report["images_added"] == 1
    assert sorted(s["item"] for s in report["skipped"]) == [
        "VOC2012/SegmentationClass/", "VOC2012/SegmentationObject/"
    ]  # fmt: skip
    (shape,) = _shapes(api, v)["VOC2012/2007_000001.jpg"]
    assert shape["bbox"] == [2, 3, 18, 27]  # 1-based inclusive devkit pixels
    assert shape["attributes"] == {"difficult": 1, "truncated": 1, "occluded": 0, "pose": "Left"}
    for fmt in ("voc", "yolo"):  # one label file per image, the photo's boxes in it
        with zipfile.ZipFile(io.BytesIO(_export(api, v, fmt))) as zf:
            entry = ("Annotations/VOC2012/2007_000001.xml" if fmt == "voc"
                     else "labels/VOC2012/2007_000001.txt")  # fmt: skip
            text = zf.read(entry).decode()
            assert (text.count("<object>") if fmt == "voc" else len(text.splitlines())) == 1
            if fmt == "voc":  # labels beyond VOC's twenty, for datumaro and CVAT
                assert zf.read("labelmap.txt").decode().splitlines()[1].startswith("person:")
                assert "<xmin>3</xmin>" in text
                assert "<xmax>20</xmax>" in text
                assert "<difficult>1</difficult>" in text
                assert "<pose>Left</pose>" in text


@pytest.mark.parametrize("fmt", ["coco", "yolo", "voc"])
def test_exports_have_unique_entries_and_read_back(api, upload, fmt):
    dataset = _dataset(api)
    v = _new_version(api, dataset, "src")
    api.post(f"/api/v1/versions/{v}/labels", json={"name": "cat"}).raise_for_status()
    names = ["a.jpg", "a.png", "sub/a.jpg", "images/x.jpg", "train/images/1.jpg"]
    for n, name in enumerate(names):
        asset = upload(v, name, image_bytes(W, H, "PNG" if name.endswith("png") else "JPEG", n))
        box = {"kind": "rectangle", "label": "cat", "bbox": [n, n, 10 + n, 10]}
        api.post(f"/api/v1/assets/{asset['id']}/annotations", json={"shapes": [box]})
    back = _new_version(api, dataset, "back")
    report = _import(api, back, fmt, _export(api, v, fmt))
    assert (report["images_added"], report["skipped_count"]) == (len(names), 0), report
    got, want = _shapes(api, back), _shapes(api, v)
    assert sorted(got) == sorted(names)
    for name in names:
        assert got[name][0]["bbox"] == pytest.approx(want[name][0]["bbox"], abs=0.01)


def test_reimport_is_idempotent_and_on_existing_chooses(api, upload):
    dataset = _dataset(api)
    src = _new_version(api, dataset, "src")
    api.post(f"/api/v1/versions/{src}/labels", json={"name": "cat"}).raise_for_status()
    for n in range(3):
        asset = upload(src, f"{n}.jpg", image_bytes(W, H, seed=n))
        box = {"kind": "rectangle", "label": "cat", "bbox": [1, 1, 9, 9]}
        api.post(f"/api/v1/assets/{asset['id']}/annotations", json={"shapes": [box]})
    data = _export(api, src, "coco")
    v = _new_version(api, dataset, "v")
    first = _import(api, v, "coco", data)
    once = _shapes(api, v)
    second = _import(api, v, "coco", data)
    assert second["images_matched"] == 3
    assert second["images_added"] == 0
    assert second["skipped_count"] == 0, second["skipped"]  # matched images are "listed"
    assert (second["shapes_added"], second["shapes_replaced"]) == (3, 3)
    assert _shapes(api, v) == once
    assert first["shapes_added"] == 3

    skipped = _import(api, v, "coco", data, on_existing="skip")
    assert skipped["shapes_added"] == 0
    assert skipped["skipped_count"] == 3
    assert _shapes(api, v) == once
    added = _import(api, v, "coco", data, on_existing="add")
    assert added["shapes_added"] == 3
    assert all(len(x) == 2 for x in _shapes(api, v).values())


def test_coco_results_file_imports_as_predictions_with_scores(api, app, tmp_path):
    dataset = _dataset(api)
    v = _new_version(api, dataset, "gt")
    _import(api, v, "coco", zip_bytes(_coco_split_files()))
    results = [
        {"image_id": 397133, "category_id": 18, "bbox": [5, 6, 10, 8], "score": 0.9},
        {"image_id": 397133, "category_id": 1, "segmentation": _rle((2, 2, 4, 4)), "score": 0.5},
        {"image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "score": 0.4},
        {"image_id": 397133, "category_id": 77, "bbox": [1, 1, 2, 2], "score": 0.3},
    ]
    data = json.dumps(results).encode()
    report = _import(api, v, "coco", data, "results.json")
    assert (report["images_matched"], report["shapes_added"], report["skipped_count"]) == (1, 2, 2)
    assert [s["reason"] for s in report["skipped"]] == [
        "no image of the version has the COCO image id 1 (import its ground truth first)",
        "no label of the version has the COCO category id 77",
    ]
    asset = api.get(f"/api/v1/versions/{v}/assets").json()["items"][0]
    anns = api.get(f"/api/v1/assets/{asset['id']}/annotations").json()["items"]
    (predicted,) = [a for a in anns if a["author_kind"] == "prediction"]
    assert sorted((s["label"], s["kind"], s["score"]) for s in predicted["shapes"]) == [
        ("dog", "rectangle", 0.9), ("person", "mask", 0.5)
    ]  # fmt: skip
    mask = next(s for s in predicted["shapes"] if s["kind"] == "mask")
    assert mask["bbox"] == [2, 2, 4, 4]  # computed from the RLE, as pycocotools' toBbox
    again = _import(api, v, "coco", data, "results.json")
    assert (again["shapes_added"], again["shapes_replaced"]) == (2, 2)
    with TestClient(app, cookies={COOKIE: ADMIN_TOKEN}) as web:  # masks and rings drawn too
        page = web.get(f"/assets/{asset['id']}")
    assert page.status_code == 200
    assert "imported predictions" in page.text
    assert "(mask)" in page.text

    # the export keeps COCO's image and category ids: the results file still evaluates on it
    with zipfile.ZipFile(io.BytesIO(_export(api, v, "coco"))) as zf:
        doc = json.loads(zf.read("annotations.json"))
    doc["annotations"] = [a for a in doc["annotations"] if "score" not in a]
    (tmp_path / "gt.json").write_text(json.dumps(doc))
    gt = COCO(str(tmp_path / "gt.json"))
    dt = gt.loadRes([r for r in results if r["image_id"] == 397133 and r["category_id"] == 18])
    assert dt.loadAnns(dt.getAnnIds())[0]["image_id"] in gt.getImgIds()
