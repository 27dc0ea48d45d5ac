"""Labels: unique names, palette colours, rename keeps shapes, delete refused when in use."""

from __future__ import annotations


def _labels(api, version_id):
    return {x["name"]: x for x in api.get(f"/api/v1/versions/{version_id}/labels").json()["items"]}


def test_labels_are_ordered_and_coloured(api, version):
    labels = list(_labels(api, version["id"]).values())
    assert [x["name"] for x in labels] == ["cat", "dog"]
    assert [x["position"] for x in labels] == [0, 1]
    assert all(x["color"].startswith("#") and len(x["color"]) == 7 for x in labels)


def test_existing_label_name_is_409_case_insensitively(api, version):
    r = api.post(f"/api/v1/versions/{version['id']}/labels", json={"name": "CAT"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "already_exists"


def test_bad_color_is_422(api, version):
    r = api.post(f"/api/v1/versions/{version['id']}/labels", json={"name": "x", "color": "red"})
    assert r.status_code == 422


def test_rename_keeps_shapes(api, version, upload):
    asset = upload(version["id"])
    cat = _labels(api, version["id"])["cat"]
    api.post(
        f"/api/v1/assets/{asset['id']}/annotations",
        json={"shapes": [{"kind": "rectangle", "label": "cat", "bbox": [0, 0, 5, 5]}]},
    ).raise_for_status()
    r = api.patch(f"/api/v1/labels/{cat['id']}", json={"name": "feline", "color": "#00FF00"})
    assert r.status_code == 200
    assert r.json()["color"] == "#00ff00"
    shapes = api.get(f"/api/v1/assets/{asset['id']}/annotations").json()["items"][0]["shapes"]
    assert [s["label"] for s in shapes] == ["feline"]


def test_delete_used_label_needs_force(api, version, upload):
    asset = upload(version["id"])
    cat = _labels(api, version["id"])["cat"]
    api.post(
        f"/api/v1/assets/{asset['id']}/annotations",
        json={"shapes": [{"kind": "rectangle", "label": "cat", "bbox": [0, 0, 5, 5]}]},
    ).raise_for_status()
    r = api.delete(f"/api/v1/labels/{cat['id']}")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "label_in_use"
    assert r.json()["error"]["details"] == {"shapes": 1}
    assert api.delete(f"/api/v1/labels/{cat['id']}", params={"force": True}).status_code == 204
    assert api.get(f"/api/v1/versions/{version['id']}/stats").json()["shapes"] == 0


def test_delete_unused_label(api, version):
    dog = _labels(api, version["id"])["dog"]
    assert api.delete(f"/api/v1/labels/{dog['id']}").status_code == 204
    assert list(_labels(api, version["id"])) == ["cat"]
