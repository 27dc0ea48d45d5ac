"""The whole asset path with blobs on S3 (a moto server): upload, image, thumbnail, export."""

from __future__ import annotations

import io
import shutil
import zipfile

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from darkroom.config import Settings
from darkroom.server import create_app
from tests.conftest import ADMIN_TOKEN
from tests.helpers import image_bytes


@pytest.fixture
def s3_api(tmp_path, sqlite_template, s3_bucket, s3_options):
    db = tmp_path / "darkroom.db"
    shutil.copy(sqlite_template, db)
    settings = Settings(
        home=tmp_path / "home",
        database_url=f"sqlite:///{db}",
        storage_url=f"s3://{s3_bucket}/blobs",
        storage_options=s3_options,
        admin_token=ADMIN_TOKEN,
    )
    app = create_app(settings)
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
        yield client
    app.state.engine.dispose()


def test_assets_on_s3(s3_api, s3_store):
    ds = s3_api.post("/api/v1/datasets", json={"name": "s3"}).json()
    v = s3_api.post(f"/api/v1/datasets/{ds['id']}/versions", json={"name": "v"}).json()
    data = image_bytes(300, 200)
    r = s3_api.post(
        f"/api/v1/versions/{v['id']}/assets", files=[("files", ("a.jpg", data, "image/jpeg"))]
    )
    assert r.status_code == 201, r.text
    asset = r.json()["items"][0]
    assert s3_store.exists(asset["blob_sha256"])
    assert s3_api.get(f"/api/v1/assets/{asset['id']}/image").content == data
    thumb = s3_api.get(f"/api/v1/assets/{asset['id']}/thumbnail", params={"size": 64}).content
    assert Image.open(io.BytesIO(thumb)).size == (64, 43)
    exported = s3_api.get(f"/api/v1/versions/{v['id']}/export", params={"format": "coco"}).content
    with zipfile.ZipFile(io.BytesIO(exported)) as zf:
        assert zf.read("images/a.jpg") == data
