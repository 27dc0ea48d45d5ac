"""Annotations: add and replace the caller's shapes; validation by shape."""

from __future__ import annotations

import pytest


def test_add_then_replace_own_shapes(api, version, upload):
    a = upload(version["id"])
    url = f"/api/v1/assets/{a['id']}/annotations"
    r = api.post(
        url,
        json={
            "shapes": [{"kind": "rectangle", "label": "cat", "bbox": [1, 2, 3, 4], "score": 0.5}]
        },
    )
    assert r.status_code == 201
    api.post(
        url, json={"shapes": [{"kind": "point", "label": "dog", "points": [[3, 4]]}]}
    ).raise_for_status()
    items = api.get(url).json()["items"]
    assert len(items) == 1
    assert items[0]["author_kind"] == "user"
    assert [(s["kind"], s["label"]) for s in items[0]["shapes"]] == [
        ("rectangle", "cat"),
        ("point", "dog"),
    ]
    assert items[0]["shapes"][0]["bbox"] == [1, 2, 3, 4]
    assert items[0]["shapes"][0]["score"] == 0.5

    r = api.put(
        url,
        json={"shapes": [{"kind": "polygon", "label": "dog", "points": [[0, 0], [10, 0], [5, 8]]}]},
    )
    assert r.status_code == 200
    shapes = api.get(url).json()["items"][0]["shapes"]
    assert [s["kind"] for s in shapes] == ["polygon"]


def test_rectangles_are_clipped_to_the_image(api, version, upload):
    a = upload(version["id"])  # 64 x 48
    r = api.post(
        f"/api/v1/assets/{a['id']}/annotations",
        json={"shapes": [{"kind": "rectangle", "label": "cat", "bbox": [-10, 40, 100, 100]}]},
    )
    assert r.json()["shapes"][0]["bbox"] == [0, 40, 64, 8]


@pytest.mark.parametrize(
    ("shape", "field"),
    [
        ({"kind": "rectangle", "label": "horse", "bbox": [0, 0, 1, 1]}, "label"),
        ({"kind": "rectangle", "label": "cat"}, "bbox"),
        ({"kind": "rectangle", "label": "cat", "bbox": [500, 500, 3, 3]}, "bbox"),
        ({"kind": "polygon", "label": "cat", "points": [[0, 0], [1, 1]]}, "points"),
        ({"kind": "circle", "label": "cat"}, "kind"),
        ({"kind": "classification", "label": "cat", "score": 3}, "score"),
        ({"kind": "polygon", "label": "cat", "rings": [[[0, 0], [5, 0], [5, 5]], [[1, 1]]]},
         "rings"),
        ({"kind": "mask", "label": "cat", "bbox": [0, 0, 2, 2],
          "mask": {"size": [10, 10], "counts": [100]}}, "mask"),  # the image is 64 x 48
        ({"kind": "mask", "label": "cat", "bbox": [0, 0, 2, 2],
          "mask": {"size": [48, 64], "counts": [5, 5]}}, "mask"),  # not 64 x 48 pixels
        ({"kind": "mask", "label": "cat", "bbox": [0, 0, 2, 2],
          "mask": {"size": [48, 64], "counts": "not rle ~~"}}, "mask"),
        ({"kind": "rectangle", "label": "cat", "bbox": [0, 0, 2, 2],
          "keypoints": [[1, 1, 5]]}, "keypoints"),
        ({"kind": "rectangle", "label": "cat", "bbox": [0, 0, 2, 2],
          "attributes": {"x": [1, 2]}}, "attributes"),
        ({"kind": "rectangle", "label": "cat", "bbox": [0, 0, 2, 2],
          "attributes": {"parts": [{"name": "head", "bbox": [0, 0, "x", 1]}]}}, "attributes"),
    ],
)  # fmt: skip
def test_invalid_shapes_are_422_with_path(api, version, upload, shape, field):
    a = upload(version["id"])
    r = api.post(
        f"/api/v1/assets/{a['id']}/annotations",
        json={"shapes": [{"kind": "classification", "label": "dog"}, shape]},
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"]["loc"] == ["shapes", 1, field]
    assert api.get(f"/api/v1/assets/{a['id']}/annotations").json()["items"] == []


def test_replace_leaves_other_authors_alone(api, other_org_api, app, version, upload):
    from darkroom.db.engine import session_scope
    from darkroom.db.models import AuthorKind
    from darkroom.domain import accounts, annotations

    a = upload(version["id"])
    with session_scope(app.state.sessions) as session:
        principal = accounts.authenticate(session, "drk_test_admin_token")
        annotations.add_shapes(
            session,
            principal,
            a["id"],
            [annotations.ShapeIn("rectangle", "dog", bbox=[0, 0, 4, 4], score=0.9)],
            author=annotations.Author(AuthorKind.run, 42),
        )
    url = f"/api/v1/assets/{a['id']}/annotations"
    api.put(url, json={"shapes": [{"kind": "classification", "label": "cat"}]}).raise_for_status()
    api.put(url, json={"shapes": []}).raise_for_status()
    items = api.get(url).json()["items"]
    by_author = {(x["author_kind"], x["author_id"]): len(x["shapes"]) for x in items}
    assert by_author[("run", 42)] == 1
    assert sum(by_author.values()) == 1


def test_annotations_of_many_assets_in_one_request(api, other_org_api, version, upload):
    a, b, c = (upload(version["id"], f"{n}.jpg")["id"] for n in "abc")
    box = {"kind": "rectangle", "label": "cat", "bbox": [1, 1, 5, 5]}
    for asset_id in (a, c):
        api.post(f"/api/v1/assets/{asset_id}/annotations", json={"shapes": [box]})
    url = f"/api/v1/versions/{version['id']}/annotations"
    items = api.get(url, params={"asset_ids": f"{c},{a},{b},999999"}).json()["items"]
    assert [(x["asset_id"], len(x["shapes"])) for x in items] == [(a, 1), (c, 1)]
    assert items[0]["shapes"][0]["label"] == "cat"
    assert api.get(url, params={"asset_ids": "1,x"}).status_code == 422
    too_many = ",".join(str(i) for i in range(1001))
    assert api.get(url, params={"asset_ids": too_many}).status_code == 422
    assert other_org_api.get(url, params={"asset_ids": str(a)}).status_code == 404


def test_shapes_keep_parts_masks_keypoints_and_attributes(api, version, upload):
    a = upload(version["id"])
    shapes = [
        {"kind": "polygon", "label": "cat", "rings": [[[0, 0], [5, 0], [5, 5]],
                                                     [[10, 10], [20, 10], [20, 20]]],
         "keypoints": [[2, 2, 2], [0, 0, 0]], "attributes": {"occluded": True}},
        {"kind": "rectangle", "label": "dog", "bbox": [1, 1, 9, 9],
         "attributes": {"parts": [{"name": "head", "bbox": [1, 1, 2, 2]}]}},
        {"kind": "mask", "label": "dog", "bbox": [0, 0, 64, 48],
         "mask": {"size": [48, 64], "counts": [0, 64 * 48]}, "attributes": {"iscrowd": 1}},
    ]  # fmt: skip
    r = api.post(f"/api/v1/assets/{a['id']}/annotations", json={"shapes": shapes})
    assert r.status_code == 201, r.text
    polygon, box, mask = r.json()["shapes"]
    assert box["attributes"] == {"parts": [{"name": "head", "bbox": [1, 1, 2, 2]}]}
    assert polygon["points"] == [[0, 0], [5, 0], [5, 5]]
    assert len(polygon["rings"]) == 2
    assert polygon["keypoints"] == [[2, 2, 2], [0, 0, 0]]
    assert polygon["attributes"] == {"occluded": True}
    assert mask["bbox"] == [0, 0, 64, 48]
    assert mask["mask"] == {"size": [48, 64], "counts": [0, 3072]}
