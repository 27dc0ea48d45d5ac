"""`data-augmentation` on real images (scikit-image's samples, a rendered page), launched
through the API and run by the engine in its sandbox."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from skimage import data as samples

from tests.engine.conftest import log_text, wait_for
from tests.helpers import rendered_page


def _png(array) -> bytes:  # type: ignore[no-untyped-def]
    out = io.BytesIO()
    Image.fromarray(array).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def photos(dr):
    """A version with the astronaut (512 x 512), the coffee cup (600 x 400) and a rendered
    page, each with a box; the astronaut also with a polygon carrying two keypoints."""
    v = dr.create_version(dr.create_dataset("photos")["id"], "v1")
    for name in ("person", "cup", "text"):
        dr.create_label(v["id"], name)
    page, paragraph = rendered_page(seed=1)
    x0, y0, x1, y1 = paragraph
    assets = dr.upload_assets(v["id"], [("astronaut.png", _png(samples.astronaut())),
                                         ("coffee.png", _png(samples.coffee())),
                                         ("pages/page.png", page)])  # fmt: skip
    shapes = {
        "astronaut.png": [
            {"kind": "rectangle", "label": "person", "bbox": [130, 20, 250, 300]},
            {"kind": "polygon", "label": "person", "points": [[180, 40], [330, 40], [260, 200]],
             "keypoints": [[210, 90, 2], [300, 95, 1]]},
        ],
        "coffee.png": [{"kind": "rectangle", "label": "cup", "bbox": [200, 60, 300, 250]}],
        "pages/page.png": [
            {"kind": "rectangle", "label": "text", "bbox": [x0, y0, x1 - x0, y1 - y0]}
        ],
    }  # fmt: skip
    for asset in assets:
        dr.add_annotations(asset["id"], shapes[asset["filename"]])
    return v, {a["filename"]: a for a in assets}, shapes


def _augment(dr, version, parameters):
    job = dr.launch_job("data-augmentation", version["id"], parameters=parameters)
    run = wait_for(lambda: dr.get_run(job["runs"][0]["id"]), lambda r: r["finished_at"], 120)
    assert run["status"] == "succeeded", log_text(dr, run["id"])
    (out,) = [x for x in dr.list_versions(version["dataset_id"])
              if x["produced_by_job_id"] == job["id"]]  # fmt: skip
    assets = list(dr.iter_assets(out["id"]))
    shapes = {a["filename"]: [s for ann in dr.list_annotations(a["id"]) for s in ann["shapes"]]
              for a in assets}  # fmt: skip
    return run, out, {a["filename"]: a for a in assets}, shapes


def test_flip_and_rotation_move_shapes_exactly(dr, photos):
    version, originals, given = photos
    run, out, assets, shapes = _augment(dr, version, {
        "pipeline": [{"transform": "HorizontalFlip", "p": 1}],
        "copies_per_asset": 1, "include_originals": False, "seed": 3,
    })  # fmt: skip
    assert out["parent_version_id"] == version["id"]
    assert sorted(assets) == ["astronaut.aug0.jpg", "coffee.aug0.jpg", "pages/page.aug0.jpg"]
    for name, original in originals.items():
        stem = name.rsplit(".", 1)[0]
        width = original["width"]
        assert (assets[f"{stem}.aug0.jpg"]["width"], assets[f"{stem}.aug0.jpg"]["height"]) == (
            original["width"], original["height"]
        )  # fmt: skip
        moved = shapes[f"{stem}.aug0.jpg"]
        for before, after in zip(given[name], moved, strict=True):
            if before["kind"] == "rectangle":
                x, y, w, h = before["bbox"]
                assert after["bbox"] == [width - x - w, y, w, h]  # x' = W - x - w, exactly
            else:
                assert after["points"] == [[width - px, py] for px, py in before["points"]]
                assert after["keypoints"] == [[width - kx, ky, v] for kx, ky, v in
                                              before["keypoints"]]  # fmt: skip
    log = log_text(dr, run["id"])
    assert "label person: 2 shapes out of 2 (0 dropped" in log
    assert run["progress"] == {"done": 3, "total": 3}

    # a 90 degree rotation of the square astronaut: (x, y, w, h) -> (y, S - x - w, h, w)
    _, _, assets, shapes = _augment(dr, version, {
        "pipeline": [{"transform": "Rotate", "limit": [90, 90], "crop_border": False, "p": 1}],
        "copies_per_asset": 1, "include_originals": False, "limit": 1,
    })  # fmt: skip
    assert list(assets) == ["astronaut.aug0.jpg"]
    box = next(s for s in shapes["astronaut.aug0.jpg"] if s["kind"] == "rectangle")
    assert box["bbox"] == [20, 512 - 130 - 250, 300, 250]


def test_random_pipelines_keep_boxes_inside_and_a_seed_repeats_its_images(dr, photos):
    version, _, _ = photos
    params = {"preset": "geometric", "copies_per_asset": 3, "seed": 11}
    run, out, assets, shapes = _augment(dr, version, params)
    assert len(assets) == 3 + 9  # the originals are copied too
    moved = 0
    for name, asset in assets.items():
        for s in shapes[name]:
            if s["kind"] == "rectangle":
                x, y, w, h = s["bbox"]
                assert min(x, y) >= 0
                assert min(w, h) > 0
                assert x + w <= asset["width"] + 1e-6
                assert y + h <= asset["height"] + 1e-6
                moved += ".aug" in name
    assert moved >= 6  # most boxes survive a mild geometric preset
    _, again, assets_again, _ = _augment(dr, version, params)
    assert again["id"] != out["id"]
    assert {n: a["blob_sha256"] for n, a in assets_again.items()} == {
        n: a["blob_sha256"] for n, a in assets.items()
    }
    assert "ETA" in log_text(dr, run["id"])


def test_a_corrupt_image_is_a_counted_failure_not_the_end(dr, engine_server, photos):
    version, originals, _ = photos
    rotten = originals["coffee.png"]["blob_sha256"]
    blob = engine_server.home / "blobs" / rotten[:2] / rotten[2:4] / rotten
    blob.write_bytes(blob.read_bytes()[:300])
    run, _, assets, _ = _augment(dr, version, {"copies_per_asset": 1, "include_originals": False})
    assert sorted(assets) == ["astronaut.aug0.jpg", "pages/page.aug0.jpg"]
    log = log_text(dr, run["id"])
    assert "coffee.png" in log
    assert "1 items failed" in log
