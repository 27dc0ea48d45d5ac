"""Processings and jobs through HTTP without an engine: registry, launch validation, re-run,
cancel of pending runs, run-scoped tokens."""

from __future__ import annotations

import pytest

from darkroom.db.engine import session_scope
from darkroom.domain import runs

CODE = "def run(ctx):\n    ctx.log.info('hi')\n"
SCHEMA = {
    "type": "object",
    "properties": {
        "batch_size": {"type": "integer", "minimum": 1, "default": 8},
        "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
    },
}


@pytest.fixture
def processing(api):
    r = api.post(
        "/api/v1/processings",
        json={"name": "mine", "type": "custom", "source": {"kind": "inline", "code": CODE},
              "parameters_schema": SCHEMA},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()


def _launch(api, version_id, **body):
    return api.post(
        "/api/v1/jobs", json={"processing": "mine", "target_version_id": version_id, **body}
    )


def _claim(app):
    with session_scope(app.state.sessions) as session:
        return runs.claim_runs(session, "test-worker", 10)


def test_builtin_is_registered_public(api, other_org_api):
    for client in (api, other_org_api):
        names = [p["name"] for p in client.get("/api/v1/processings").json()["items"]]
        assert "dataset-stats" in names
    p = api.get("/api/v1/processings/dataset-stats").json()
    assert p["builtin"]
    assert p["is_public"]
    assert p["latest_revision"]["number"] == 1
    assert api.patch("/api/v1/processings/dataset-stats", json={"timeout_s": 5}).status_code == 403


def test_builtin_registration_is_idempotent(app):
    from darkroom.db.models import ProcessingRevision
    from darkroom.processings import discover
    from darkroom.server import register_builtins

    with session_scope(app.state.sessions) as session:
        register_builtins(session)
        register_builtins(session)
        assert session.query(ProcessingRevision).count() == len(discover()) == 9


def test_private_processing_is_invisible_to_other_orgs(api, other_org_api, processing):
    assert other_org_api.get(f"/api/v1/processings/{processing['id']}").status_code == 404
    assert other_org_api.get("/api/v1/processings/mine").status_code == 404


def test_launch_resolves_defaults_and_creates_pending_run(api, version, processing):
    r = _launch(api, version["id"], parameters={"batch_size": 4})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["parameters"] == {"batch_size": 4, "mode": "fast"}
    assert job["status"] == "pending"
    [run] = job["runs"]
    assert (run["attempt"], run["revision"], run["status"]) == (1, 1, "pending")
    assert run["started_at"] is None
    assert run["duration_s"] is None


@pytest.mark.parametrize(
    ("parameters", "loc"),
    [
        ({"batch_size": "eight"}, ["parameters", "batch_size"]),
        ({"batch_size": 0}, ["parameters", "batch_size"]),
        ({"mode": "medium"}, ["parameters", "mode"]),
        ({"bacth_size": 8}, ["parameters", "bacth_size"]),
        # an integer schema without a maximum still takes 64 bits at most
        ({"batch_size": 10**400}, ["parameters", "batch_size"]),
        ({"batch_size": 2**63}, ["parameters", "batch_size"]),
    ],
)
def test_parameters_violating_the_schema_are_422_naming_the_field(
    api, version, processing, parameters, loc
):
    r = _launch(api, version["id"], parameters=parameters)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_parameters"
    assert err["details"]["loc"] == loc
    assert ".".join(loc) in err["message"]


def test_launch_bad_targets(api, other_org_api, version, processing):
    r = api.post("/api/v1/jobs", json={"processing": "nope", "target_version_id": version["id"]})
    assert r.status_code == 404
    r = other_org_api.post(
        "/api/v1/jobs", json={"processing": "dataset-stats", "target_version_id": version["id"]}
    )
    assert r.status_code == 404
    assert _launch(api, 424242).status_code == 404


def test_model_required_but_missing_is_422(api, version):
    api.post(
        "/api/v1/processings",
        json={"name": "needs", "type": "pre_annotation", "needs_model": True,
              "source": {"kind": "inline", "code": CODE}},
    ).raise_for_status()  # fmt: skip
    r = api.post("/api/v1/jobs", json={"processing": "needs", "target_version_id": version["id"]})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "model_required"


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"source": {"kind": "inline", "code": "def run(ctx:\n"}}, ["source", "code"]),
        ({"source": {"kind": "docker"}}, ["source", "kind"]),
        (
            {"source": {"kind": "inline", "code": CODE, "requirements": ["x"]}},
            ["source", "requirements"],
        ),
        ({"source": {"kind": "builtin", "module": "os"}}, ["source", "kind"]),
        (
            {"source": {"kind": "inline", "code": CODE}, "parameters_schema": {"type": "array"}},
            ["parameters_schema", "type"],
        ),
        (
            {
                "source": {"kind": "inline", "code": CODE},
                "parameters_schema": {
                    "type": "object",
                    "properties": {"n": {"type": "integer", "default": "x"}},
                },
            },
            ["parameters_schema", "properties", "n", "default"],
        ),
        ({"source": {"kind": "inline", "code": CODE}, "timeout_s": 0}, ["timeout_s"]),
    ],
)
def test_invalid_processing_definitions(api, body, loc):
    r = api.post("/api/v1/processings", json={"name": "bad", "type": "custom", **body})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"]["loc"] == loc


def test_an_edit_with_a_bad_source_names_the_field_and_keeps_the_revision(api, processing):
    r = api.patch("/api/v1/processings/mine", json={"source": {"kind": "inline", "code": ""}})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"]["loc"] == ["source", "code"]
    assert api.get("/api/v1/processings/mine").json()["latest_revision"]["number"] == 1


def test_a_source_stored_by_an_older_release_still_loads_and_runs_its_code(app, api, processing):
    """The column is parsed leniently: a key this release does not know is dropped, not a 500."""
    from sqlalchemy import text

    with session_scope(app.state.sessions) as session:
        session.execute(
            text("UPDATE processing_revisions SET source = :doc WHERE id = :id"),
            {"doc": '{"kind": "inline", "code": "def run(ctx): pass", "legacy": 1}',
             "id": processing["latest_revision"]["id"]},
        )  # fmt: skip
    got = api.get("/api/v1/processings/mine").json()["latest_revision"]["source"]
    assert got == {"kind": "inline", "code": "def run(ctx): pass"}


def test_edit_makes_revisions_only_when_runnable_parts_change(api, processing):
    r = api.patch("/api/v1/processings/mine", json={"description": "now documented"})
    assert r.json()["latest_revision"]["number"] == 1
    r = api.patch("/api/v1/processings/mine", json={"timeout_s": 60})
    assert r.json()["latest_revision"]["number"] == 2
    revisions = api.get("/api/v1/processings/mine/revisions").json()["items"]
    assert [(x["number"], x["timeout_s"]) for x in revisions] == [(1, 7200), (2, 60)]


def test_rerun_and_cancel_of_pending_runs(api, version, processing):
    job = _launch(api, version["id"]).json()
    run_id = job["runs"][0]["id"]
    assert api.post(f"/api/v1/jobs/{job['id']}/rerun").status_code == 409
    r = api.post(f"/api/v1/runs/{run_id}/cancel")
    assert r.json()["status"] == "cancelled"
    assert api.post(f"/api/v1/runs/{run_id}/cancel").status_code == 409
    api.patch("/api/v1/processings/mine", json={"timeout_s": 30}).raise_for_status()
    r = api.post(f"/api/v1/jobs/{job['id']}/rerun", json={"parameters": {"mode": "slow"}})
    assert r.status_code == 201
    assert (r.json()["attempt"], r.json()["revision"]) == (2, 2)
    job = api.get(f"/api/v1/jobs/{job['id']}").json()
    assert job["parameters"] == {"batch_size": 8, "mode": "slow"}
    assert [x["status"] for x in job["runs"]] == ["cancelled", "pending"]
    assert (
        api.post(f"/api/v1/jobs/{job['id']}/rerun", json={"parameters": {"mode": "x"}}).status_code
        == 409
    )


def test_one_active_run_per_job_is_enforced_by_the_database(app, api, version, processing):
    from sqlalchemy.exc import IntegrityError

    from darkroom.db.models import Run

    job = _launch(api, version["id"]).json()
    session = app.state.sessions()
    session.add(Run(job_id=job["id"], attempt=2, revision_id=job["runs"][0]["revision_id"]))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()
    session.close()


def test_run_token_scope(app, api, anon, version, processing, upload):
    asset = upload(version["id"])
    other_version = api.post(
        f"/api/v1/datasets/{version['dataset_id']}/versions", json={"name": "other"}
    ).json()
    job = _launch(api, version["id"]).json()
    other_job = _launch(api, other_version["id"]).json()
    claimed = {c.job_id: c for c in _claim(app)}
    token = claimed[job["id"]].token
    h = {"Authorization": f"Bearer {token}"}
    run_id = claimed[job["id"]].run_id

    # its inputs, outputs and progress
    ctx = anon.get(f"/api/v1/runs/{run_id}/context", headers=h).json()
    assert ctx["target_version"]["id"] == version["id"]
    assert ctx["parameters"] == {"batch_size": 8, "mode": "fast"}
    assert anon.get(f"/api/v1/versions/{version['id']}/assets", headers=h).status_code == 200
    assert anon.get(f"/api/v1/assets/{asset['id']}/image", headers=h).status_code == 200
    r = anon.post(f"/api/v1/runs/{run_id}/progress", json={"done": 1, "total": 2}, headers=h)
    assert r.json()["progress"] == {"done": 1, "total": 2}
    r = anon.post(
        f"/api/v1/runs/{run_id}/annotations",
        json={
            "items": [
                {"asset_id": asset["id"], "shapes": [{"kind": "classification", "label": "cat"}]}
            ]
        },
        headers=h,
    )
    assert r.json() == {"shapes_added": 1}
    authors = [
        (a["author_kind"], a["author_id"])
        for a in api.get(f"/api/v1/assets/{asset['id']}/annotations").json()["items"]
    ]
    assert authors == [("run", run_id)]
    out = anon.post(f"/api/v1/runs/{run_id}/output-version", json={"name": "out"}, headers=h)
    assert out.status_code == 201
    assert out.json()["parent_version_id"] == version["id"]
    assert out.json()["produced_by_job_id"] == job["id"]
    assert anon.get(f"/api/v1/versions/{out.json()['id']}", headers=h).status_code == 200

    # nothing else
    assert anon.get(f"/api/v1/versions/{other_version['id']}", headers=h).status_code == 403
    assert (
        anon.get(f"/api/v1/runs/{claimed[other_job['id']].run_id}/context", headers=h).status_code
        == 403
    )
    assert anon.get("/api/v1/datasets", headers=h).status_code == 403
    assert (
        anon.post(
            "/api/v1/jobs",
            json={"processing": "mine", "target_version_id": version["id"]},
            headers=h,
        ).status_code
        == 403
    )
    assert anon.delete(f"/api/v1/assets/{asset['id']}", headers=h).status_code == 403

    # and it dies with the run
    with session_scope(app.state.sessions) as session:
        runs.finish_run(session, run_id, "test-worker", "succeeded", exit_code=0)
    r = anon.get(f"/api/v1/runs/{run_id}/context", headers=h)
    assert r.status_code == 401


def test_claim_takes_at_most_the_limit_and_each_run_once(app, api, version, processing):
    for _ in range(6):
        _launch(api, version["id"]).raise_for_status()
    with session_scope(app.state.sessions) as session:
        first = runs.claim_runs(session, "w1", 2)
    with session_scope(app.state.sessions) as session:
        second = runs.claim_runs(session, "w2", 10)
    assert len(first) == 2
    assert len(second) == 4
    assert not {c.run_id for c in first} & {c.run_id for c in second}
    jobs = api.get("/api/v1/jobs").json()["items"]
    owners = sorted(r["worker_id"] for j in jobs for r in j["runs"])
    assert owners == ["w1"] * 2 + ["w2"] * 4


def test_changed_builtin_gets_a_new_revision(app, api):
    from darkroom.domain.processings import RevisionSpec, register_builtin
    from darkroom.sources import parse_source

    current = api.get("/api/v1/processings/dataset-stats").json()["latest_revision"]
    changed = parse_source({**current["source"], "code_sha256": "0" * 64})
    with session_scope(app.state.sessions) as session:
        register_builtin(
            session, name="dataset-stats", type="custom", description="changed", needs_model=False,
            spec=RevisionSpec(changed, current["parameters_schema"], current["timeout_s"]),
        )  # fmt: skip
    p = api.get("/api/v1/processings/dataset-stats").json()
    assert p["latest_revision"]["number"] == 2
    assert p["description"] == "changed"
