"""Every route but health needs a token; data is scoped to the token's organization."""

from __future__ import annotations


def test_missing_token_is_401_with_envelope(anon):
    r = anon.get("/api/v1/datasets")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"


def test_wrong_token_is_401(anon):
    r = anon.get("/api/v1/datasets", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401


def test_other_organization_sees_404_not_403(api, other_org_api, version, upload):
    asset = upload(version["id"])
    labels = api.get(f"/api/v1/versions/{version['id']}/labels").json()["items"]
    for path in (
        f"/api/v1/datasets/{version['dataset_id']}",
        f"/api/v1/versions/{version['id']}",
        f"/api/v1/versions/{version['id']}/assets",
        f"/api/v1/versions/{version['id']}/stats",
        f"/api/v1/assets/{asset['id']}",
        f"/api/v1/assets/{asset['id']}/image",
        f"/api/v1/assets/{asset['id']}/annotations",
    ):
        r = other_org_api.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "not_found"
    assert other_org_api.delete(f"/api/v1/labels/{labels[0]['id']}").status_code == 404
    assert other_org_api.delete(f"/api/v1/datasets/{version['dataset_id']}").status_code == 404
    assert other_org_api.get("/api/v1/datasets").json()["items"] == []
    # and the data is still there for its owner
    assert api.get(f"/api/v1/assets/{asset['id']}").status_code == 200


def test_same_dataset_name_in_two_organizations(api, other_org_api):
    assert api.post("/api/v1/datasets", json={"name": "x"}).status_code == 201
    assert other_org_api.post("/api/v1/datasets", json={"name": "x"}).status_code == 201
