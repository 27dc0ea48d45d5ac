"""Datasets and versions through HTTP: CRUD, names, pagination, copies, stats, lineage."""

from __future__ import annotations


def test_health_needs_no_token(anon):
    r = anon.get("/api/v1/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["version"]


def test_dataset_crud(api):
    r = api.post("/api/v1/datasets", json={"name": "cars", "description": "street"})
    assert r.status_code == 201
    ds = r.json()
    assert api.get(f"/api/v1/datasets/{ds['id']}").json()["name"] == "cars"
    r = api.patch(f"/api/v1/datasets/{ds['id']}", json={"name": "vehicles"})
    assert r.json()["name"] == "vehicles"
    assert r.json()["description"] == "street"
    assert api.delete(f"/api/v1/datasets/{ds['id']}").status_code == 204
    assert api.get(f"/api/v1/datasets/{ds['id']}").status_code == 404


def test_duplicate_dataset_name_is_409(api):
    api.post("/api/v1/datasets", json={"name": "cars"})
    r = api.post("/api/v1/datasets", json={"name": "cars"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "already_exists"


def test_empty_name_is_422_with_field(api):
    r = api.post("/api/v1/datasets", json={"name": "   "})
    assert r.status_code == 422
    assert r.json()["error"]["details"] == {"field": "name"}


def test_missing_field_is_422_in_error_envelope(api):
    r = api.post("/api/v1/datasets", json={})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_input"
    assert err["details"][0]["loc"] == ["body", "name"]


def test_keyset_pagination_walks_every_dataset_once(api):
    for i in range(7):
        api.post("/api/v1/datasets", json={"name": f"d{i}"}).raise_for_status()
    seen, after = [], None
    while True:
        params = {"limit": 3} | ({"after": after} if after is not None else {})
        page = api.get("/api/v1/datasets", params=params).json()
        seen += [d["name"] for d in page["items"]]
        after = page["next"]
        if after is None:
            break
    assert seen == [f"d{i}" for i in range(7)]


def test_limit_out_of_range_is_422(api):
    assert api.get("/api/v1/datasets", params={"limit": 0}).status_code == 422
    assert api.get("/api/v1/datasets", params={"limit": 100000}).status_code == 422


def test_version_copy_copies_rows_not_bytes(api, version, upload):
    asset = upload(version["id"], "a.jpg")
    api.post(
        f"/api/v1/assets/{asset['id']}/annotations",
        json={"shapes": [{"kind": "rectangle", "label": "cat", "bbox": [1, 2, 10, 10]}]},
    ).raise_for_status()
    api.patch(f"/api/v1/assets/{asset['id']}", json={"tags": ["train"]}).raise_for_status()

    r = api.post(
        f"/api/v1/datasets/{version['dataset_id']}/versions",
        json={"name": "v2", "parent_version_id": version["id"]},
    )
    assert r.status_code == 201
    v2 = r.json()
    assert v2["parent_version_id"] == version["id"]
    stats = api.get(f"/api/v1/versions/{v2['id']}/stats").json()
    assert stats["assets"] == 1
    assert stats["annotated_assets"] == 1
    assert {c["name"]: c["shapes"] for c in stats["labels"]} == {"cat": 1, "dog": 0}
    copied = api.get(f"/api/v1/versions/{v2['id']}/assets").json()["items"][0]
    assert copied["id"] != asset["id"]
    assert copied["blob_sha256"] == asset["blob_sha256"]
    assert copied["tags"] == ["train"]
    # the copy is independent: editing it leaves the parent alone
    api.put(f"/api/v1/assets/{copied['id']}/annotations", json={"shapes": []}).raise_for_status()
    assert api.get(f"/api/v1/versions/{version['id']}/stats").json()["shapes"] == 1
    assert api.get(f"/api/v1/versions/{v2['id']}/stats").json()["shapes"] == 0


def test_version_names_unique_per_dataset(api, version):
    r = api.post(f"/api/v1/datasets/{version['dataset_id']}/versions", json={"name": "v1"})
    assert r.status_code == 409


def test_version_of_unknown_parent_is_404(api, version):
    r = api.post(
        f"/api/v1/datasets/{version['dataset_id']}/versions",
        json={"name": "v2", "parent_version_id": 98765},
    )
    assert r.status_code == 404


def test_delete_version_removes_its_assets(api, version, upload):
    asset = upload(version["id"])
    assert api.delete(f"/api/v1/versions/{version['id']}").status_code == 204
    assert api.get(f"/api/v1/assets/{asset['id']}").status_code == 404


def test_openapi_lists_contract_paths(anon):
    paths = anon.get("/api/v1/openapi.json").json()["paths"]
    for path in (
        "/api/v1/health",
        "/api/v1/datasets",
        "/api/v1/datasets/{dataset_id}/versions",
        "/api/v1/versions/{version_id}/stats",
        "/api/v1/versions/{version_id}/labels",
        "/api/v1/labels/{label_id}",
        "/api/v1/versions/{version_id}/assets",
        "/api/v1/assets/{asset_id}/thumbnail",
        "/api/v1/assets/{asset_id}/annotations",
        "/api/v1/versions/{version_id}/import",
        "/api/v1/versions/{version_id}/export",
    ):
        assert path in paths, path
