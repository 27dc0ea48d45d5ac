"""Shared fixtures: a fresh database per test (SQLite, and PostgreSQL for tests that ask),
an app and an authenticated client over it, and small generated images."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from darkroom.config import Settings
from darkroom.db import migrate
from darkroom.db.engine import make_engine, session_scope
from darkroom.db.models import Base
from darkroom.domain import accounts
from darkroom.server import create_app
from tests.helpers import image_bytes
from tests.servers import DARKROOM, Result, Server, start_server, stop_server

ADMIN_TOKEN = "drk_test_admin_token"
PG_ADMIN_URL = os.environ.get(
    "DARKROOM_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


# -- databases ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating takes longer than copying)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def _pg_url(database: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A throw-away PostgreSQL database for this test session, migrated to head."""
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"darkroom_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = _pg_url(name)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _truncate_all(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh, migrated, empty database: every test that uses it runs on both backends."""
    if request.param == "sqlite":
        path = tmp_path / "darkroom.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_database")
    _truncate_all(url)
    return url


# -- application ----------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        home=tmp_path / "home",
        database_url=database_url,
        storage_url=str(tmp_path / "blobs"),
        admin_token=ADMIN_TOKEN,
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[object]:
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def api(app: object) -> Iterator[TestClient]:
    """The admin's authenticated HTTP client against the real app."""
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
        yield client


@pytest.fixture
def anon(app: object) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def other_org_api(app: object) -> Iterator[TestClient]:
    """A client for a user of a second organization."""
    with session_scope(app.state.sessions) as session:  # type: ignore[attr-defined]
        org = accounts.create_organization(session, "other")
        user = accounts.create_user(session, org, "mallory")
        token = accounts.create_token(session, user, "test")
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


# -- factories ------------------------------------------------------------------------------


@pytest.fixture
def make_image() -> Callable[..., bytes]:
    return image_bytes


@pytest.fixture
def version(api: TestClient) -> dict:
    """A dataset version with labels `cat` and `dog`."""
    ds = api.post("/api/v1/datasets", json={"name": "pets"}).json()
    v = api.post(f"/api/v1/datasets/{ds['id']}/versions", json={"name": "v1"}).json()
    for name in ("cat", "dog"):
        api.post(f"/api/v1/versions/{v['id']}/labels", json={"name": name}).raise_for_status()
    return v


@pytest.fixture
def upload(api: TestClient) -> Callable[..., dict]:
    """Uploads one generated image to a version and returns the asset."""

    def _upload(version_id: int, name: str = "a.jpg", data: bytes | None = None) -> dict:
        r = api.post(
            f"/api/v1/versions/{version_id}/assets",
            files=[("files", (name, data or image_bytes(), "image/jpeg"))],
        )
        assert r.status_code == 201, r.text
        return r.json()["items"][0]

    return _upload


# -- S3 (a moto server started for the session) ----------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    from tests.helpers import free_port

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_options(s3_endpoint: str) -> dict:
    return {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
    }


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    import boto3

    name = f"darkroom-{uuid.uuid4().hex[:8]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_store(s3_bucket: str, s3_options: dict):
    from darkroom.storage import BlobStore

    return BlobStore(f"s3://{s3_bucket}/blobs", **s3_options)


# -- real processes -----------------------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path, sqlite_template: Path) -> Iterator[Server]:
    """A real `darkroom serve`; its runs cache weights, bundles and environments in tmp_path."""
    env = {"DARKROOM_CACHE": str(tmp_path / "cache")}
    srv = start_server(tmp_path / "home", env, migrated=sqlite_template)
    yield srv
    stop_server(srv)


@pytest.fixture
def cli(server: Server) -> Callable[..., Result]:
    """Runs `darkroom ARGS…` against the server, as a user's shell would."""

    def run(*args: str, input: str | None = None, cwd: Path | None = None) -> Result:
        proc = subprocess.run(
            [DARKROOM, *args],
            env=server.env,
            cwd=cwd,
            capture_output=True,
            text=True,
            input=input,
            timeout=120,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run


# -- TensorFlow SavedModels (exported once per session from the real frozen graph) -------------


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{"tf1": folder, "tf2": folder}: SSDLite SavedModels in both layouts
    (`tests/saved_models.py`)."""
    from tests.engine.test_tf_preannotation import PEDESTRIAN
    from tests.saved_models import export_saved_models
    from tests.unit.test_inference_models import model_path

    return export_saved_models(model_path(*PEDESTRIAN), tmp_path_factory.mktemp("saved-models"))


@pytest.fixture(scope="session")
def saved_model_zips(saved_models: dict[str, Path]) -> dict[str, Path]:
    from tests.saved_models import zip_folder

    return {k: zip_folder(v, v.parent / "saved_model.zip") for k, v in saved_models.items()}
