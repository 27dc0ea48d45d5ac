"""`smart-version` through the API and the engine: filters, exact and near duplicates,
diversity sampling and the stratified split, on real photos and generated images."""

from __future__ import annotations

import io

import httpx
import numpy as np
from PIL import Image
from skimage import data as samples

from tests.engine.conftest import log_text, wait_for


def _encode(array, fmt="PNG", **kw) -> bytes:  # type: ignore[no-untyped-def]
    out = io.BytesIO()
    Image.fromarray(array).save(out, fmt, **kw)
    return out.getvalue()


def _noise(seed: int, size: int = 96) -> np.ndarray:
    """A distinct image per seed: smooth random blobs (a perceptual hash tells them apart)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((size, size), Image.BICUBIC))


def _smart(dr, version, parameters):
    job = dr.launch_job("smart-version", version["id"], parameters=parameters)
    run = wait_for(lambda: dr.get_run(job["runs"][0]["id"]), lambda r: r["finished_at"], 120)
    log = log_text(dr, run["id"])
    assert run["status"] == "succeeded", log
    outputs = [x for x in dr.list_versions(version["dataset_id"])
               if x["produced_by_job_id"] == job["id"]]  # fmt: skip
    return log, {x["name"]: list(dr.iter_assets(x["id"])) for x in outputs}, job


def test_duplicates_go_and_the_annotated_copy_stays(dr):
    v = dr.create_version(dr.create_dataset("photos")["id"], "v1")
    dr.create_label(v["id"], "person")
    astronaut = samples.astronaut()
    lighter = np.clip(astronaut.astype(int) + 4, 0, 255).astype(np.uint8)
    assets = dr.upload_assets(v["id"], [
        ("astronaut.png", _encode(astronaut)),
        ("copy/astronaut.png", _encode(astronaut)),  # the same bytes
        ("astronaut.jpg", _encode(astronaut, "JPEG", quality=85)),  # the same picture
        ("lighter.png", _encode(lighter)),
        ("coffee.png", _encode(samples.coffee())),
        ("cat.png", _encode(samples.chelsea())),
    ])  # fmt: skip
    copy = next(a for a in assets if a["filename"] == "copy/astronaut.png")
    dr.add_annotations(copy["id"], [{"kind": "rectangle", "label": "person",
                                     "bbox": [130, 20, 250, 300]}])  # fmt: skip
    log, outputs, _ = _smart(dr, v, {"output_version_name": "unique"})
    assert sorted(a["filename"] for a in outputs["unique"]) == [
        "cat.png", "coffee.png", "copy/astronaut.png"
    ]  # fmt: skip
    assert "exact duplicates: 1 groups, 1 images removed" in log
    assert "kept copy/astronaut.png, removed astronaut.png" in log
    assert "near duplicates (distance <= 4): 1 groups, 2 images removed" in log
    kept = next(a for a in outputs["unique"] if a["filename"] == "copy/astronaut.png")
    assert [s["label"] for a in dr.list_annotations(kept["id"]) for s in a["shapes"]] == ["person"]


def _labelled_version(dr, n=30):
    """`n` distinct images; label `common` on all, `rare` on 3, `pair` on 2; tag `night` on
    the first 10; sizes 96 px except the last two (40 px)."""
    v = dr.create_version(dr.create_dataset("many")["id"], "v1")
    for name in ("common", "rare", "pair"):
        dr.create_label(v["id"], name)
    files = [(f"{i:02d}.png", _encode(_noise(i, 40 if i >= n - 2 else 96))) for i in range(n)]
    assets = dr.upload_assets(v["id"], files)
    for i, asset in enumerate(assets):
        labels = ["common"] + (["rare"] if i in (3, 11, 19) else []) + (
            ["pair"] if i in (5, 6) else [])  # fmt: skip
        box = [{"kind": "rectangle", "label": x, "bbox": [1, 1, 10, 10]} for x in labels]
        dr.add_annotations(asset["id"], box)
        if i < 10:
            dr.update_asset(asset["id"], tags=["night"])
    return v


def test_filters_pick_exactly_what_they_say(dr):
    v = _labelled_version(dr)
    _, outputs, _ = _smart(dr, v, {"labels_any": ["RARE", "pair"], "labels_none": ["pair"],
                                "output_version_name": "rare"})  # fmt: skip
    assert sorted(a["filename"] for a in outputs["rare"]) == ["03.png", "11.png", "19.png"]
    _, outputs, _ = _smart(dr, v, {"tags_any": ["night"], "min_width": 50,
                                "output_version_name": "night"})  # fmt: skip
    assert len(outputs["night"]) == 10
    _, outputs, _ = _smart(dr, v, {"min_width": 50, "output_version_name": "big"})
    assert len(outputs["big"]) == 28


def test_split_puts_each_label_in_every_split_and_sampling_keeps_the_size(dr, engine_server):
    v = _labelled_version(dr)
    split = {"train": 0.6, "val": 0.2, "test": 0.2}
    log, outputs, _ = _smart(dr, v, {"split": split, "seed": 5, "output_version_name": "split"})
    by_tag = {s: [a for a in outputs["split"] if s in a["tags"]] for s in split}
    assert [len(by_tag[s]) for s in split] == [18, 6, 6]
    every = sorted(a["filename"] for s in split for a in by_tag[s])
    assert every == [f"{i:02d}.png" for i in range(30)]
    night = [a for a in outputs["split"] if "night" in a["tags"]]
    assert len(night) == 10  # the input's tags are kept beside the split's
    rare = {"03.png", "11.png", "19.png"}
    for s in split:  # 3 images of `rare`: one in each split
        assert len(rare & {a["filename"] for a in by_tag[s]}) == 1, s
    assert "label rare: train 1, val 1, test 1" in log

    log, outputs, job = _smart(dr, v, {"split": split, "split_as": "versions", "target_size": 10,
                                  "seed": 5, "output_version_name": "sample"})  # fmt: skip
    sizes = {name: len(assets) for name, assets in outputs.items()}
    assert sum(sizes.values()) == 10
    assert set(sizes) == {"sample-train", "sample-val", "sample-test"}
    assert "diversity sampling (k-center on colour histograms + HOG): kept 10 images" in log

    # lineage both ways: the job page links its three versions, the dataset page nests them
    job_id = job["id"]
    with httpx.Client(base_url=engine_server.url,
                      cookies={"darkroom_token": engine_server.token}) as web:  # fmt: skip
        job_page = web.get(f"/jobs/{job_id}").text
        tree = web.get(f"/datasets/{v['dataset_id']}").text
    for name in ("sample-train", "sample-val", "sample-test"):
        assert f">{name}</a>" in job_page
        row = tree[tree.index(f">{name}</a>") - 250 : tree.index(f">{name}</a>")]
        assert 'data-depth="1"' in row
    _, again, _ = _smart(dr, v, {"split": split, "split_as": "versions", "target_size": 10,
                              "seed": 5, "output_version_name": "again"})  # fmt: skip
    assert sorted(a["filename"] for x in again.values() for a in x) == sorted(
        a["filename"] for x in outputs.values() for a in x
    )  # the same seed picks the same images


def test_filters_that_select_nothing_fail_the_run_saying_so(dr):
    """Findings B1: smart-version that selected 0 images made an empty version and succeeded."""
    v = _labelled_version(dr, n=4)
    job = dr.launch_job("smart-version", v["id"], parameters={"labels_any": ["no-such-label"]})
    run = wait_for(lambda: dr.get_run(job["runs"][0]["id"]), lambda r: r["finished_at"], 120)
    assert run["status"] == "failed", log_text(dr, run["id"])
    assert "no image of the 4 passes the filters" in run["error_summary"], run
    assert [
        x for x in dr.list_versions(v["dataset_id"]) if x["produced_by_job_id"] == job["id"]
    ] == []
