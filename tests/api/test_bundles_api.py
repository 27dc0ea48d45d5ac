"""Pushing bundles over HTTP: revisions by content, refusals before anything is stored, image
sources refused at launch, development revisions, and the bundle download's token scope."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from darkroom.db.engine import session_scope
from darkroom.db.models import Blob, Processing
from darkroom.domain import runs
from tests.unit.test_bundles import MAIN, tar_gz

MANIFEST = b"name: boxer\ntype: pre_annotation\nentrypoint: main:run\ntimeout: 60\n"
FILES = {"darkroom.yaml": MANIFEST, "main.py": MAIN}


def push(api, files=None, *, dev=False):
    data = tar_gz(files or FILES)
    return api.post("/api/v1/processings/push", files={"bundle": ("b.tar.gz", data)},
                    data={"dev": str(dev).lower()})  # fmt: skip


def counts(app) -> tuple[int, int]:
    with session_scope(app.state.sessions) as session:
        blobs = session.scalar(select(func.count()).select_from(Blob))
        procs = session.scalar(select(func.count()).select_from(Processing))
        return blobs, procs


def test_push_creates_then_revises_by_content(api):
    first = push(api)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["created"] is True
    assert body["processing"]["type"] == "pre_annotation"
    source = body["revision"]["source"]
    assert source["kind"] == "bundle"
    assert source["entrypoint"] == "main:run"
    assert body["revision"]["timeout_s"] == 60
    again = push(api)
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert again.json()["revision"]["number"] == 1
    changed = push(api, {**FILES, "main.py": MAIN + b"# v2\n"})
    assert changed.status_code == 201
    assert changed.json()["revision"]["number"] == 2
    assert changed.json()["revision"]["source"]["sha256"] != source["sha256"]


@pytest.mark.parametrize(
    ("files", "status", "code", "message"),
    [
        ({**FILES, "../../evil.py": b"x"}, 422, "unsafe_bundle", "escapes"),
        ({"darkroom.yaml": MANIFEST}, 422, "invalid_bundle", "entrypoint module 'main'"),
        ({**FILES, "requirements.txt": b"numpy\n"}, 422, "invalid_bundle", "is not pinned"),
    ],
)
def test_bad_bundles_store_nothing(app, api, files, status, code, message):
    before = counts(app)
    r = push(api, files)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert message in r.json()["error"]["message"]
    assert counts(app) == before


def test_an_oversized_bundle_is_refused_before_storing(app, api):
    app.state.settings.max_bundle_bytes = 200
    before = counts(app)
    r = push(api, {**FILES, "data.bin": bytes(range(256)) * 40})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "bundle_too_large"
    assert counts(app) == before
    r = api.post("/api/v1/processings/push", files={"bundle": ("x.zip", b"PK\x03\x04garbage")})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "bad_archive"


def test_bundle_sources_come_from_push_only(api):
    sha = push(api).json()["revision"]["source"]["sha256"]
    forged = {"kind": "bundle", "sha256": sha, "entrypoint": "main:run"}
    r = api.post("/api/v1/processings", json={"name": "forged", "type": "custom",
                                              "source": forged})  # fmt: skip
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_source"
    r = api.patch("/api/v1/processings/boxer", json={"source": forged})
    assert r.status_code == 422
    # an unchanged bundle source may take a new schema or timeout
    r = api.patch("/api/v1/processings/boxer", json={"timeout_s": 90})
    assert r.status_code == 200, r.text
    assert r.json()["latest_revision"]["number"] == 2
    assert r.json()["latest_revision"]["source"]["sha256"] == sha


def test_image_sources_are_stored_and_refused_at_launch(api, version):
    source = {"kind": "image", "image": "registry.example.com/team/detector:1.4",
              "command": ["python", "-m", "detect"]}  # fmt: skip
    r = api.post("/api/v1/processings", json={"name": "in-a-box", "type": "custom",
                                              "source": source})  # fmt: skip
    assert r.status_code == 201, r.text
    assert api.get("/api/v1/processings/in-a-box").json()["latest_revision"]["source"] == source
    r = api.post(
        "/api/v1/jobs", json={"processing": "in-a-box", "target_version_id": version["id"]}
    )
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "executor_unsupported"
    assert "Executors that can run images" in error["message"]
    assert error["details"]["image_executors"] == []
    bad_source = {"kind": "image", "image": "Not An Image"}
    bad = api.post("/api/v1/processings", json={"name": "bad-image", "type": "custom",
                                                "source": bad_source})  # fmt: skip
    assert bad.status_code == 422


def test_development_revisions_do_not_change_what_launches_take(api, version):
    push(api)
    dev = push(api, {**FILES, "main.py": MAIN + b"# wip\n"}, dev=True).json()
    assert dev["revision"]["is_dev"] is True
    assert dev["revision"]["number"] == 2
    assert api.get("/api/v1/processings/boxer").json()["latest_revision"]["number"] == 1
    launch = {"processing": "boxer", "target_version_id": version["id"]}
    regular = api.post("/api/v1/jobs", json=launch).json()
    assert regular["runs"][0]["revision"] == 1
    on_dev = api.post("/api/v1/jobs", json={**launch, "revision": 2}).json()
    assert on_dev["runs"][0]["revision"] == 2
    r = api.post("/api/v1/jobs", json={**launch, "revision": 9})
    assert r.status_code == 404


def test_bundle_download_is_scoped_to_the_run(app, api, anon, other_org_api, version):
    push(api)
    launch = {"processing": "boxer", "target_version_id": version["id"]}
    job = api.post("/api/v1/jobs", json=launch).json()
    other = api.post("/api/v1/jobs", json=launch).json()
    with session_scope(app.state.sessions) as session:
        claimed = {c.job_id: c for c in runs.claim_runs(session, "w", 10)}
    run_id, token = claimed[job["id"]].run_id, claimed[job["id"]].token
    h = {"Authorization": f"Bearer {token}"}
    r = anon.get(f"/api/v1/runs/{run_id}/bundle", headers=h)
    assert r.status_code == 200
    assert r.content[:2] == b"\x1f\x8b"
    other_run = claimed[other["id"]].run_id
    assert anon.get(f"/api/v1/runs/{other_run}/bundle", headers=h).status_code == 403
    assert other_org_api.get(f"/api/v1/runs/{run_id}/bundle").status_code == 404
