"""Assets: validation of uploads, filters, images and thumbnails."""

from __future__ import annotations

import io
import tarfile

import pytest
from PIL import Image

from tests.helpers import image_bytes, png_header_only


def _post(api, version_id, *files):
    return api.post(
        f"/api/v1/versions/{version_id}/assets",
        files=[("files", (name, data, "application/octet-stream")) for name, data in files],
    )


def test_upload_many_and_list(api, version):
    r = _post(
        api, version["id"], ("a.jpg", image_bytes(64, 48)), ("b.png", image_bytes(30, 20, "PNG"))
    )
    assert r.status_code == 201
    items = r.json()["items"]
    assert [(a["filename"], a["width"], a["height"], a["mime"]) for a in items] == [
        ("a.jpg", 64, 48, "image/jpeg"),
        ("b.png", 30, 20, "image/png"),
    ]
    listed = api.get(f"/api/v1/versions/{version['id']}/assets").json()
    assert [a["id"] for a in listed["items"]] == [a["id"] for a in items]
    assert listed["next"] is None


@pytest.mark.parametrize(
    ("name", "data", "status", "code"),
    [
        ("empty.jpg", b"", 422, "empty_file"),
        ("notes.jpg", b"these are my notes, not a picture\n" * 4, 415, "unsupported_media_type"),
        ("cut.jpg", image_bytes(200, 200)[:400], 422, "corrupt_image"),
        ("huge.png", png_header_only(50_000, 50_000), 413, "image_too_large"),
    ],
)
def test_bad_files_are_rejected_with_their_name(api, version, name, data, status, code):
    r = _post(api, version["id"], ("ok.jpg", image_bytes()), (name, data))
    assert r.status_code == status
    err = r.json()["error"]
    assert err["code"] == code
    assert name in err["message"]
    # all or nothing: the good file of the same request was not kept
    assert api.get(f"/api/v1/versions/{version['id']}/assets").json()["items"] == []


def test_same_filename_twice_is_409(api, version, upload):
    upload(version["id"], "a.jpg")
    r = _post(api, version["id"], ("a.jpg", image_bytes(seed=3)))
    assert r.status_code == 409
    assert r.json()["error"]["details"] == {"filename": "a.jpg"}


def test_same_bytes_are_stored_once(api, version, upload, settings):
    data = image_bytes(seed=7)
    a = upload(version["id"], "a.jpg", data)
    b = upload(version["id"], "b.jpg", data)
    assert a["blob_sha256"] == b["blob_sha256"]
    blobs = [
        p
        for p in (settings.home.parent / "blobs").rglob("*")
        if p.is_file() and ".tmp" not in p.parts
    ]
    assert len(blobs) == 1


def test_image_and_thumbnail(api, version, upload):
    asset = upload(version["id"], "big.jpg", image_bytes(1000, 500))
    r = api.get(f"/api/v1/assets/{asset['id']}/image")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(r.content)).size == (1000, 500)
    assert (
        api.get(
            f"/api/v1/assets/{asset['id']}/image", headers={"If-None-Match": r.headers["etag"]}
        ).status_code
        == 304
    )
    t = api.get(f"/api/v1/assets/{asset['id']}/thumbnail", params={"size": 128})
    assert t.status_code == 200
    assert Image.open(io.BytesIO(t.content)).size == (128, 64)
    # second call answers the cached file, same bytes
    assert (
        api.get(f"/api/v1/assets/{asset['id']}/thumbnail", params={"size": 128}).content
        == t.content
    )
    assert (
        api.get(f"/api/v1/assets/{asset['id']}/thumbnail", params={"size": 77}).status_code == 422
    )


def test_filters_label_tag_annotated(api, version, upload):
    a = upload(version["id"], "a.jpg")
    b = upload(version["id"], "b.jpg")
    c = upload(version["id"], "c.jpg")
    api.post(
        f"/api/v1/assets/{a['id']}/annotations",
        json={"shapes": [{"kind": "rectangle", "label": "cat", "bbox": [0, 0, 5, 5]}]},
    ).raise_for_status()
    api.post(
        f"/api/v1/assets/{b['id']}/annotations",
        json={"shapes": [{"kind": "classification", "label": "dog"}]},
    ).raise_for_status()
    api.patch(f"/api/v1/assets/{c['id']}", json={"tags": ["val", "blurry"]}).raise_for_status()

    def ids(**params):
        r = api.get(f"/api/v1/versions/{version['id']}/assets", params=params)
        assert r.status_code == 200, r.text
        return [x["id"] for x in r.json()["items"]]

    assert ids(label="cat") == [a["id"]]
    assert ids(label="DOG") == [b["id"]]
    assert ids(annotated=True) == [a["id"], b["id"]]
    assert ids(annotated=False) == [c["id"]]
    assert ids(tag="val") == [c["id"]]
    assert ids(tag="train") == []
    r = api.get(f"/api/v1/versions/{version['id']}/assets", params={"label": "horse"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "unknown_label"


def test_tags_are_trimmed_sorted_unique(api, version, upload):
    a = upload(version["id"])
    r = api.patch(
        f"/api/v1/assets/{a['id']}", json={"tags": [" b", "a", "b"], "metadata": {"k": 1}}
    )
    assert r.json()["tags"] == ["a", "b"]
    assert r.json()["metadata"] == {"k": 1}


def test_delete_asset(api, version, upload):
    a = upload(version["id"])
    assert api.delete(f"/api/v1/assets/{a['id']}").status_code == 204
    assert api.get(f"/api/v1/assets/{a['id']}").status_code == 404


def test_path_in_filename_cannot_escape(api, version):
    r = _post(api, version["id"], ("../../etc/a.jpg", image_bytes()))
    assert r.status_code == 422


def test_many_images_in_one_request(api, other_org_api, version, upload, make_image):
    import io
    import tarfile

    a = upload(version["id"], "a.jpg", make_image(seed=1))
    b = upload(version["id"], "b.jpg", make_image(seed=2))
    other = api.post(f"/api/v1/datasets/{version['dataset_id']}/versions",
                     json={"name": "other"}).json()  # fmt: skip
    c = upload(other["id"], "c.jpg", make_image(seed=3))
    url = f"/api/v1/versions/{version['id']}/images"
    r = api.get(url, params={"ids": f"{b['id']},{c['id']},{a['id']}"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar}
    assert list(members) == [str(b["id"]), str(a["id"])]  # in the order asked, c not in it
    assert members[str(a["id"])] == api.get(f"/api/v1/assets/{a['id']}/image").content
    assert api.get(url, params={"ids": "1,x"}).status_code == 422
    too_many = ",".join(str(i) for i in range(1, 66))
    assert api.get(url, params={"ids": too_many}).status_code == 422
    assert other_org_api.get(url, params={"ids": str(a["id"])}).status_code == 404


def _tar(*members: tuple[str, bytes | None], link: str | None = None) -> bytes:
    """A tar of (name, bytes) files; bytes None is a folder; `link` adds a symlink to it."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
                continue
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link is not None:
            info = tarfile.TarInfo("evil.jpg")
            info.type, info.linkname = tarfile.SYMTYPE, link
            tar.addfile(info)
    return out.getvalue()


def _post_tar(api, version_id, body, **headers):
    return api.post(
        f"/api/v1/versions/{version_id}/assets/tar",
        content=body,
        headers={"Content-Type": "application/x-tar", **headers},
    )


def test_a_tar_body_uploads_like_a_form(api, version):
    long_name = "deep/" * 30 + "été.png"  # past ustar's 100 characters, not ASCII
    body = _tar(("deep", None), ("a.jpg", image_bytes(64, 48)),
                (long_name, image_bytes(30, 20, "PNG")))  # fmt: skip
    r = _post_tar(api, version["id"], body)
    assert r.status_code == 201, r.text
    items = r.json()["items"]
    assert [(a["width"], a["height"], a["mime"]) for a in items] == [
        (64, 48, "image/jpeg"),
        (30, 20, "image/png"),
    ]
    assert items[0]["filename"] == "a.jpg"
    assert items[1]["filename"].endswith("été.png")
    blob = api.get(f"/api/v1/assets/{items[0]['id']}/image")
    assert blob.content == image_bytes(64, 48)


def test_a_body_that_is_not_a_tar_is_422(api, version):
    r = _post_tar(api, version["id"], b"not a tar at all" * 40)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "bad_archive"


def test_a_tar_with_a_link_or_a_bad_image_stores_nothing(api, version):
    body = _tar(("ok.jpg", image_bytes()), link="/etc/passwd")
    linked = _post_tar(api, version["id"], body)
    assert linked.status_code == 422, linked.text
    assert linked.json()["error"]["code"] == "unsafe_archive"
    assert "evil.jpg" in linked.json()["error"]["message"]
    cut = _post_tar(api, version["id"], _tar(("ok.jpg", image_bytes()),
                                             ("cut.jpg", image_bytes(200, 200)[:400])))  # fmt: skip
    assert cut.status_code == 422
    assert cut.json()["error"]["code"] == "corrupt_image"
    assert "cut.jpg" in cut.json()["error"]["message"]
    assert api.get(f"/api/v1/versions/{version['id']}/assets").json()["items"] == []
