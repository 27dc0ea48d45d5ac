"""The `darkroom` CLI against a real server: the commands users and scripts rely on."""

from __future__ import annotations

import zipfile

from tests.helpers import image_bytes


def test_dataset_version_label_asset_flow(cli, tmp_path):
    ds = cli("dataset", "create", "pets", "--description", "cats and dogs", "--json").json()
    assert ds["name"] == "pets"
    v = cli("version", "create", str(ds["id"]), "v1", "--json").json()
    labels = cli("label", "add", str(v["id"]), "cat", "dog", "--json").json()
    assert [x["name"] for x in labels] == ["cat", "dog"]
    assert [x["name"] for x in cli("label", "list", str(v["id"]), "--json").json()] == [
        "cat",
        "dog",
    ]

    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    for i in range(20):
        (folder / f"{i:02}.jpg").write_bytes(image_bytes(32, 24, seed=i))
    (folder / "sub" / "x.png").write_bytes(image_bytes(10, 10, "PNG"))
    (folder / "broken.jpg").write_bytes(b"not an image")
    (folder / "notes.txt").write_text("ignored")

    r = cli("asset", "upload", str(v["id"]), str(folder), "--json")
    assert r.code == 1  # one file was rejected
    result = r.json()
    assert len(result["uploaded"]) == 21
    assert [x["filename"] for x in result["rejected"]] == ["broken.jpg"]
    assert "sub/x.png" in {a["filename"] for a in result["uploaded"]}

    again = cli("asset", "upload", str(v["id"]), str(folder / "00.jpg"), "--json")
    assert again.code == 0
    assert again.json()["skipped"][0]["code"] == "already_exists"

    listed = cli("asset", "list", str(v["id"]), "--limit", "0", "--json").json()
    assert len(listed) == 21
    stats = cli("version", "stats", str(v["id"]), "--json").json()
    assert stats["assets"] == 21
    assert [x["name"] for x in cli("dataset", "list", "--json").json()] == ["pets"]
    shown = cli("dataset", "show", str(ds["id"]), "--json").json()
    assert [x["name"] for x in shown["versions"]] == ["v1"]


def test_import_and_export_commands(cli, tmp_path):
    ds = cli("dataset", "create", "d", "--json").json()
    v = cli("version", "create", str(ds["id"]), "v1", "--json").json()
    archive = tmp_path / "in.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("classes.txt", "cat\ndog\n")
        zf.writestr("images/a.jpg", image_bytes(100, 100))
        zf.writestr("labels/a.txt", "0 0.5 0.5 0.2 0.2\n1 0.2 0.2 0.1 0.1\n")
    report = cli("import", "yolo", str(v["id"]), str(archive), "--json").json()
    assert (report["images_added"], report["shapes_added"]) == (1, 2)
    out = tmp_path / "out.zip"
    exported = cli("export", "coco", str(v["id"]), "-o", str(out), "--json").json()
    assert exported["path"] == str(out)
    with zipfile.ZipFile(out) as zf:
        assert "annotations.json" in zf.namelist()
    human = cli("import", "coco", str(v["id"]), str(out))
    assert human.code == 0
    assert "images added 0, matched 1, shapes 2 (replaced 2)" in human.out  # a re-import
    assert cli("version", "stats", str(v["id"]), "--json").json()["shapes"] == 2
    added = cli("import", "coco", str(v["id"]), str(out), "--on-existing", "add", "--json")
    assert added.json()["on_existing"] == "add"
    assert cli("version", "stats", str(v["id"]), "--json").json()["shapes"] == 4


def test_errors_are_plain_words_and_exit_non_zero(cli):
    r = cli("dataset", "show", "4242")
    assert r.code == 1
    assert "dataset 4242 not found" in r.err
    r = cli("--token", "wrong", "dataset", "list")
    assert r.code == 1
    assert "invalid or revoked token" in r.err


def test_delete_asks_unless_yes(cli):
    ds = cli("dataset", "create", "gone", "--json").json()
    r = cli("dataset", "delete", str(ds["id"]), input="n\n")
    assert r.code == 1
    assert cli("dataset", "delete", str(ds["id"]), "--yes", "--json").json() == {
        "id": ds["id"],
        "deleted": True,
    }
    assert cli("dataset", "list", "--json").json() == []


def test_admin_gc_deletes_strays_and_unreferenced_blobs(cli, server):
    """A refused upload's bytes (no row) and a deleted asset's blob go; a fresh stray stays."""
    import os
    import time

    from darkroom.client import Client
    from darkroom.storage import BlobStore
    from tests.helpers import image_bytes

    store = BlobStore(str(server.home / "blobs"))
    stray = store.put_bytes(image_bytes(seed=11)).sha256
    fresh = store.put_bytes(image_bytes(seed=12)).sha256
    past = time.time() - 7200
    os.utime(store.local_path(stray), (past, past))
    with Client(server.url, server.token) as dr:
        v = dr.create_version(dr.create_dataset("gc")["id"], "v1")
        asset = dr.upload_assets(v["id"], [("a.jpg", image_bytes(seed=13))])[0]
        dr.delete_asset(asset["id"])
    dry = cli("admin", "gc", "--dry-run", "--grace-s", "3600", "--json")
    assert dry.code == 0, dry.err
    assert dry.json() == {"unreferenced": [], "strays": [stray], "dry_run": True}
    assert store.exists(stray)
    done = cli("admin", "gc", "--grace-s", "0", "--json")
    assert done.code == 0, done.err
    found = done.json()
    assert found["unreferenced"] == [asset["blob_sha256"]]
    assert set(found["strays"]) == {stray, fresh}
    assert not store.exists(stray)
