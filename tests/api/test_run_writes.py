"""A run's writes through the API: idempotency keys, published limits, finished assets."""

from __future__ import annotations

from darkroom.db.engine import session_scope
from darkroom.db.models import RunStatus
from darkroom.domain import runs
from tests.api.test_assets import _post_tar, _tar
from tests.api.test_jobs import _claim, _launch
from tests.api.test_jobs import processing as processing  # a fixture
from tests.helpers import image_bytes

RECT = {"kind": "rectangle", "label": "cat", "bbox": [1, 1, 5, 5]}


def _run_headers(app, api, version):
    job = _launch(api, version["id"]).json()
    claimed = {c.job_id: c for c in _claim(app)}[job["id"]]
    return job, claimed.run_id, {"Authorization": f"Bearer {claimed.token}"}


def test_a_retried_annotation_batch_is_written_once(app, api, anon, version, processing, upload):
    asset = upload(version["id"])
    _, run_id, h = _run_headers(app, api, version)
    body = {"items": [{"asset_id": asset["id"], "shapes": [RECT, RECT]}]}
    keyed = {**h, "Idempotency-Key": "batch-1"}
    first = anon.post(f"/api/v1/runs/{run_id}/annotations", json=body, headers=keyed)
    again = anon.post(f"/api/v1/runs/{run_id}/annotations", json=body, headers=keyed)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() == {"shapes_added": 2}
    assert api.get(f"/api/v1/versions/{version['id']}/stats").json()["shapes"] == 2
    other = anon.post(
        f"/api/v1/runs/{run_id}/annotations", json=body, headers={**h, "Idempotency-Key": "b-2"}
    )
    assert other.json() == {"shapes_added": 2}  # another key is another write
    assert api.get(f"/api/v1/versions/{version['id']}/stats").json()["shapes"] == 4
    bad = anon.post(
        f"/api/v1/runs/{run_id}/annotations", json=body, headers={**h, "Idempotency-Key": "x" * 101}
    )
    assert bad.status_code == 422


def test_a_retried_output_version_and_upload_are_made_once(
    app, api, anon, version, processing, make_image
):
    _, run_id, h = _run_headers(app, api, version)
    keyed = {**h, "Idempotency-Key": "out-1"}
    first = anon.post(f"/api/v1/runs/{run_id}/output-version", json={"name": "o"}, headers=keyed)
    again = anon.post(f"/api/v1/runs/{run_id}/output-version", json={"name": "o"}, headers=keyed)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    out = first.json()["id"]
    files = [("files", ("new.png", make_image(), "image/png"))]
    keyed = {**h, "Idempotency-Key": "up-1"}
    up1 = anon.post(f"/api/v1/versions/{out}/assets", files=files, headers=keyed)
    up2 = anon.post(f"/api/v1/versions/{out}/assets", files=files, headers=keyed)
    assert up1.status_code == up2.status_code == 201
    assert up1.json() == up2.json()
    names = [a["filename"] for a in api.get(f"/api/v1/versions/{out}/assets").json()["items"]]
    assert names.count("new.png") == 1


def test_the_context_publishes_limits_and_a_too_large_batch_is_refused(
    app, api, anon, version, processing, upload
):
    assets = [upload(version["id"], f"{i}.png") for i in range(3)]
    _, run_id, h = _run_headers(app, api, version)
    ctx = anon.get(f"/api/v1/runs/{run_id}/context", headers=h).json()
    limit = ctx["limits"]["max_batch_images"]
    assert limit == 64
    assert ctx["resume"] is False
    ids = ",".join(str(assets[0]["id"]) for _ in range(limit + 1))
    r = anon.get(f"/api/v1/versions/{version['id']}/images", params={"ids": ids}, headers=h)
    assert r.status_code == 422
    assert f"at most {limit}" in r.json()["error"]["message"]


def test_resume_skips_what_earlier_runs_finished(app, api, anon, version, processing, upload):
    a, b, c = (upload(version["id"], f"{i}.png") for i in range(3))
    job, run_id, h = _run_headers(app, api, version)
    body = {"items": [{"asset_id": a["id"], "shapes": [RECT]}], "done": [b["id"]]}
    assert anon.post(f"/api/v1/runs/{run_id}/annotations", json=body, headers=h).status_code == 201
    with session_scope(app.state.sessions) as session:  # it crashed
        assert runs.finish_run(session, run_id, "test-worker", RunStatus.failed, exit_code=-9)
    rerun = api.post(f"/api/v1/jobs/{job['id']}/rerun", json={"resume": True})
    assert rerun.status_code == 201
    assert rerun.json()["resume"] is True
    claimed = {c.job_id: c for c in _claim(app)}[job["id"]]
    h2 = {"Authorization": f"Bearer {claimed.token}"}
    ctx = anon.get(f"/api/v1/runs/{claimed.run_id}/context", headers=h2).json()
    assert ctx["resume"] is True
    finished = anon.get(f"/api/v1/runs/{claimed.run_id}/finished-assets", headers=h2).json()
    assert finished == sorted([a["id"], b["id"]])
    # a run that is not resumed clears the earlier runs' work, and what they finished with it
    cleared = anon.post(f"/api/v1/runs/{claimed.run_id}/clear-previous-annotations", headers=h2)
    assert cleared.json() == {"deleted": 1}
    assert anon.get(f"/api/v1/runs/{claimed.run_id}/finished-assets", headers=h2).json() == []
    assert c["id"] not in finished


def test_an_upload_with_a_name_twice_is_refused_whole(api, version, make_image):
    files = [("files", (n, make_image(), "image/png")) for n in ("a.png", "b.png", "a.png")]
    r = api.post(f"/api/v1/versions/{version['id']}/assets", files=files)
    assert r.status_code == 409
    assert r.json()["error"]["details"] == {"filename": "a.png"}
    assert api.get(f"/api/v1/versions/{version['id']}/stats").json()["assets"] == 0


def test_a_retried_tar_upload_with_its_key_is_stored_once(app, api, anon, version, processing):
    _, run_id, h = _run_headers(app, api, version)
    out = anon.post(f"/api/v1/runs/{run_id}/output-version", json={"name": "o"}, headers=h)
    body = _tar(("new.jpg", image_bytes()))
    first = _post_tar(anon, out.json()["id"], body, **h, **{"Idempotency-Key": "tar-1"})
    again = _post_tar(anon, out.json()["id"], body, **h, **{"Idempotency-Key": "tar-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    listed = api.get(f"/api/v1/versions/{out.json()['id']}/assets").json()["items"]
    assert [a["filename"] for a in listed] == ["new.jpg"]
    into_input = _post_tar(anon, version["id"], body, **h)
    assert into_input.status_code == 403
