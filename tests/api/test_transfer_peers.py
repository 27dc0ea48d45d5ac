"""Other projects' dataset files (tests/data/peers, see its README) imported through the API,
checked against independent readers: pycocotools for COCO, supervision for Pascal VOC, and for
YOLO the boxes datumaro 1.13.12 reads from the same files (noted per case). Then each version
is exported in the three formats and read back by pycocotools and supervision."""

from __future__ import annotations

import io
import json
import posixpath
import zipfile
from pathlib import Path

import pytest
import supervision as sv
from pycocotools.coco import COCO

from tests.helpers import version_shapes

PEERS = Path(__file__).parent.parent / "data" / "peers" / "datumaro"


def _zip_folder(folder: Path) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return out.getvalue()


def _import(api, fmt, folder):
    ds = api.post("/api/v1/datasets", json={"name": folder.replace("/", "-")}).json()
    v = api.post(f"/api/v1/datasets/{ds['id']}/versions", json={"name": "v"}).json()["id"]
    r = api.post(
        f"/api/v1/versions/{v}/import",
        params={"format": fmt},
        files={"file": ("in.zip", _zip_folder(PEERS / folder), "application/zip")},
    )
    assert r.status_code == 200, r.text
    return v, r.json()


def _objects(api, version_id):
    """{asset name: sorted [(label, (x, y, w, h) rounded, kind, keypoints)]}."""
    return {
        name: sorted(((s["label"], _box(s), s["kind"], s["keypoints"]) for s in shapes), key=repr)
        for name, shapes in version_shapes(api, version_id).items()
    }


def _box(shape):
    if shape["bbox"] is not None:
        return tuple(round(v, 2) for v in shape["bbox"])
    if shape["points"] is None:
        return None
    pts = [p for ring in (shape["rings"] or [shape["points"]]) for p in ring]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return tuple(round(v, 2) for v in (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)))


def _coco_expected(folder: str, split_of) -> dict[str, set]:
    """What pycocotools reads from every detection, segmentation and keypoints file of the
    folder, by the asset name darkroom gives each image; objects repeated across files once."""
    out: dict[str, set] = {}
    for path in sorted((PEERS / folder).rglob("*.json")):
        if path.name.startswith("stuff_"):  # background regions, not the images' objects
            continue
        doc = json.loads(path.read_text())
        anns = doc.get("annotations") or []
        if not anns or "segments_info" in anns[0] or "caption" in anns[0]:
            continue
        gt = COCO(str(path))
        for ann in gt.loadAnns(gt.getAnnIds()):
            image = gt.loadImgs(ann["image_id"])[0]
            name = f"{split_of(path)}/{image['file_name']}"
            label = gt.loadCats(ann["category_id"])[0]["name"]
            box = tuple(round(v, 2) for v in ann["bbox"]) if "bbox" in ann else None
            out.setdefault(name, set()).add((label, box))
    return out


@pytest.mark.parametrize(
    ("folder", "split_of", "skipped"),
    [
        # datumaro's own layout of every COCO task: captions and panoptic files are named as
        # not supported, panoptic PNG masks as images no file lists
        ("coco_dataset/coco", lambda p: p.stem.rsplit("_", 1)[1],
         {"annotations/captions_train.json", "annotations/captions_val.json",
          "annotations/panoptic_train.json", "annotations/panoptic_val.json",
          "annotations/panoptic_train/a.png", "annotations/panoptic_val/b.png",
          "annotations/stuff_train.json", "annotations/stuff_val.json"}),
        ("coco_dataset/mmdet_coco", lambda p: p.stem.rsplit("_", 1)[1], set()),
        ("coco_dataset/coco_roboflow", lambda p: p.parent.name, set()),
        ("roboflow_dataset/coco", lambda p: p.parent.name, set()),
    ],
)  # fmt: skip
def test_coco_layouts_match_pycocotools(api, folder, split_of, skipped):
    v, report = _import(api, "coco", folder)
    assert {s["item"] for s in report["skipped"]} == skipped, report["skipped"]
    got = {
        name: {(label, box) for label, box, kind, _ in rows if kind != "classification"}
        for name, rows in _objects(api, v).items()
    }
    expected = _coco_expected(folder, split_of)
    assert {n: x for n, x in got.items() if x} == {
        n: {o for o in x if o[1] is not None} for n, x in expected.items()
    }
    if folder == "coco_dataset/coco":  # person_keypoints and labels merged into the objects
        assert got["train/a.jpg"] == {("b", (2, 2, 3, 1))}  # the instances file's, no stuff
        rows = _objects(api, v)["val/b.jpg"]
        assert [r[3] for r in rows if r[2] == "polygon"] == [[[1, 2, 2], [3, 4, 2], [2, 3, 2]]]
        assert sorted(r[0] for r in rows if r[2] == "classification") == ["a", "b"]


@pytest.mark.parametrize(
    ("folder", "boxes"),
    [
        # what datumaro 1.13.12 reads ("yolo" format): label_2 [0, 2, 4, 2], label_4 [3, 3, 2, 3]
        ("yolo_dataset/annotations", {"1.jpg"}),
        ("yolo_dataset/labels", {"train/1.jpg", "val/1.jpg"}),
        ("yolo_dataset/strict", {"obj_train_data/1.jpg"}),
    ],
)
def test_yolo_layouts_read_as_datumaro_does(api, folder, boxes):
    v, report = _import(api, "yolo", folder)
    assert report["skipped_count"] == 0, report["skipped"]
    objects = _objects(api, v)
    assert set(objects) == boxes
    for rows in objects.values():
        got = [(label, box) for label, box, _, _ in rows]
        assert [g[0] for g in got] == ["label_2", "label_4"]
        assert got[0][1] == pytest.approx((0, 2, 4, 2), abs=0.01)
        assert got[1][1] == pytest.approx((3, 3, 2, 3), abs=0.01)


def test_roboflow_yolo_reads_as_datumaro_does(api):
    v, report = _import(api, "yolo", "roboflow_dataset/yolo")
    assert report["skipped_count"] == 0, report["skipped"]
    # datumaro 1.13.12 ("roboflow_yolo"): train_001 label_0 [2, 1, 3, 1]; train_002 label_1
    # [0, 0, 2, 4]; val_001 label_0 [0, 0, 1, 2] and label_1 [0, 0, 9, 1]
    expected = {
        "train/train_001.jpg": [("label_0", (2, 1, 3, 1))],
        "train/train_002.jpg": [("label_1", (0, 0, 2, 4))],
        "val/val_001.jpg": [("label_0", (0, 0, 1, 2)), ("label_1", (0, 0, 9, 1))],
    }
    got = _objects(api, v)
    assert set(got) == set(expected)
    for name, rows in expected.items():
        assert [r[0] for r in got[name]] == [r[0] for r in rows]
        for (_, box, _, _), (_, want) in zip(got[name], rows, strict=True):
            assert box == pytest.approx(want, abs=0.01)


def _supervision_voc(images: Path, annotations: Path) -> dict[str, list]:
    ds = sv.DetectionDataset.from_pascal_voc(str(images), str(annotations))
    out = {}
    for path, _, det in ds:
        boxes = [
            (ds.classes[c], tuple(xyxy)) for xyxy, c in zip(det.xyxy, det.class_id, strict=True)
        ]
        out[Path(path).name] = sorted(boxes)
    return out


@pytest.mark.parametrize(
    ("folder", "images", "annotations", "prefix"),
    [
        ("voc_dataset/voc_dataset3", "JPEGImages", "Annotations", ""),
        ("roboflow_dataset/voc", "train", "train", "train/"),
        ("roboflow_dataset/voc", "val", "val", "val/"),
    ],
)
def test_voc_layouts_match_supervision_within_a_pixel(api, folder, images, annotations, prefix):
    v, report = _import(api, "voc", folder)
    assert report["skipped_count"] == 0, report["skipped"]
    got = _objects(api, v)
    theirs = _supervision_voc(PEERS / folder / images, PEERS / folder / annotations)
    assert theirs
    for name, boxes in theirs.items():
        ours = sorted((label, box) for label, box, _, _ in got[prefix + name])
        assert [b[0] for b in ours] == [b[0] for b in boxes]
        for (_, (x, y, w, h)), (_, xyxy) in zip(ours, boxes, strict=True):
            assert (x, y, x + w, y + h) == pytest.approx(xyxy, abs=1.0)


def test_voc_devkit_with_masks_parts_and_actions(api):
    v, report = _import(api, "voc", "voc_dataset/voc_dataset1")
    assert sorted(s["item"] for s in report["skipped"]) == ["SegmentationClass/",
                                                            "SegmentationObject/"]  # fmt: skip
    assert report["images_added"] == 2
    shapes = {s["label"]: s for x in version_shapes(api, v).values() for s in x}
    assert shapes["cat"]["attributes"] == {"truncated": 1, "difficult": 0, "pose": "Unspecified"}
    assert "head" not in shapes  # a part is not an object, nor a label of the version
    labels = api.get(f"/api/v1/versions/{v}/labels").json()["items"]
    assert "head" not in {label["name"] for label in labels}
    assert shapes["person"]["attributes"]["parts"] == [{"name": "head", "bbox": [4.5, 5, 3, 3]}]
    exported = api.get(f"/api/v1/versions/{v}/export", params={"format": "voc"}).content
    with zipfile.ZipFile(io.BytesIO(exported)) as zf:
        xml = zf.read("Annotations/2007_000001.xml").decode()
    part = xml[xml.index("<part>") : xml.index("</part>")]
    assert "<name>head</name>" in part
    assert "<xmin>5.5</xmin>" in part
    assert "<ymax>8</ymax>" in part
    assert shapes["person"]["attributes"]["ridinghorse"] == 1
    assert shapes["person"]["attributes"]["jumping"] == 0


FOLDERS = [
    ("coco", "coco_dataset/coco"),
    ("coco", "roboflow_dataset/coco"),
    ("yolo", "yolo_dataset/labels"),
    ("yolo", "roboflow_dataset/yolo"),
    ("voc", "voc_dataset/voc_dataset1"),
]


KEPT = {"coco": ("rectangle", "mask", "polygon"), "yolo": ("rectangle", "mask", "polygon"),
        "voc": ("rectangle",)}  # fmt: skip


@pytest.mark.parametrize(("source_fmt", "folder"), FOLDERS)
def test_exports_read_back_by_pycocotools_and_supervision(api, tmp_path, source_fmt, folder):
    v, _ = _import(api, source_fmt, folder)
    ours = _objects(api, v)
    for fmt, kinds in KEPT.items():
        r = api.get(f"/api/v1/versions/{v}/export", params={"format": fmt})
        out = tmp_path / fmt
        with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
            names = zf.namelist()
            assert len(names) == len(set(names))
            zf.extractall(out)
        theirs = {"coco": _read_coco, "yolo": _read_yolo, "voc": _read_voc}[fmt](out)
        expected = {n: sorted((r[0], r[1]) for r in rows if r[2] in kinds)
                    for n, rows in ours.items()}  # fmt: skip
        _compare(theirs, expected)


def _read_coco(out: Path) -> dict[str, list]:
    gt = COCO(str(out / "annotations.json"))
    theirs = {}
    for image in gt.loadImgs(gt.getImgIds()):
        anns = gt.loadAnns(gt.getAnnIds(imgIds=[image["id"]]))
        theirs[image["file_name"]] = [
            (gt.loadCats(a["category_id"])[0]["name"], tuple(a["bbox"])) for a in anns
        ]
    return theirs


def _boxes(ds: sv.DetectionDataset, det: sv.Detections) -> list:
    return [
        (ds.classes[c], (x0, y0, x1 - x0, y1 - y0))
        for (x0, y0, x1, y1), c in zip(det.xyxy, det.class_id, strict=True)
    ]


def _read_voc(out: Path) -> dict[str, list]:
    theirs = {}
    for xml in sorted((out / "Annotations").rglob("*.xml")):
        rel = xml.relative_to(out / "Annotations").with_suffix("")
        image = next((out / "JPEGImages" / rel.parent).glob(rel.name + ".*"))
        ds = sv.DetectionDataset.from_pascal_voc(str(image.parent), str(xml.parent))
        theirs[image.relative_to(out / "JPEGImages").as_posix()] = _boxes(
            ds, ds.annotations[str(image)]
        )
    return theirs


def _read_yolo(out: Path) -> dict[str, list]:
    theirs = {}
    for image in sorted(p for p in (out / "images").rglob("*") if p.is_file()):
        rel = image.relative_to(out / "images").as_posix()
        labels = out / "labels" / posixpath.dirname(rel)
        ds = sv.DetectionDataset.from_yolo(str(image.parent), str(labels), str(out / "data.yaml"))
        theirs[rel] = _boxes(ds, ds.annotations[str(image)])
    return theirs


def _compare(theirs: dict, ours: dict) -> None:
    """Same images, same classes, boxes within 1 px."""
    assert {n for n, b in theirs.items() if b} == {n for n, b in ours.items() if b}
    for name, boxes in ours.items():
        if not boxes:
            continue
        assert [b[0] for b in sorted(theirs[name])] == [b[0] for b in boxes], name
        for (_, got), (_, want) in zip(sorted(theirs[name]), boxes, strict=True):
            assert got == pytest.approx(want, abs=1.0), name
