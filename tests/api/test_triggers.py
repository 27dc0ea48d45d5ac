"""Triggers through the API: checked at create; a schedule fires once per due time whoever
looks, including two schedulers looking at once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from darkroom.db.engine import session_scope
from darkroom.db.models import Job, Trigger
from darkroom.domain.triggers import fire_due

TRIGGERS = "/api/v1/triggers"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"kind": "schedule", "processing": "dataset-stats", "cron": "61 * * * *"}, "cron",
         "not a cron expression"),
        ({"kind": "schedule", "processing": "dataset-stats"}, "cron", "needs cron"),
        ({"kind": "assets"}, "pipeline", "a pipeline or a processing"),
        ({"kind": "version", "processing": "dataset-stats"}, "dataset_id", "watches a dataset"),
        ({"kind": "assets", "processing": "yolo-preannotation"}, "model_version_id",
         "needs a model version"),
        ({"kind": "assets", "processing": "dataset-stats", "min_assets": 0}, "min_assets",
         "between 1"),
        ({"kind": "assets", "processing": "dataset-stats", "parameters": {"nope": 1}},
         "parameters", ""),
    ],
)  # fmt: skip
def test_a_bad_trigger_is_refused_naming_the_field(api, version, body, field, words):
    body = {"name": "t", "version_id": version["id"], **body}
    r = api.post(TRIGGERS, json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert field in error["details"]["loc"], error
    assert words in error["message"]


def test_another_organization_sees_and_watches_nothing(api, other_org_api, version):
    body = {
        "name": "t",
        "kind": "assets",
        "processing": "dataset-stats",
        "version_id": version["id"],
    }
    assert other_org_api.post(TRIGGERS, json=body).status_code == 404  # not its version
    made = api.post(TRIGGERS, json=body).json()
    assert other_org_api.get(f"{TRIGGERS}/{made['id']}").status_code == 404
    assert other_org_api.get(TRIGGERS).json()["items"] == []
    assert api.post(TRIGGERS, json=body).json()["error"]["code"] == "name_taken"


def test_a_schedule_fires_once_per_due_time_even_with_two_schedulers(app, api, version):
    body = {"name": "nightly", "kind": "schedule", "processing": "dataset-stats",
            "version_id": version["id"], "cron": "0 3 * * *"}  # fmt: skip
    made = api.post(TRIGGERS, json=body).json()
    due = api.get(f"{TRIGGERS}/{made['id']}").json()["next_fire_at"]
    assert due.endswith("03:00:00Z") or "T03:00:00" in due
    with session_scope(app.state.sessions) as session:
        at = session.get(Trigger, made["id"]).next_fire_at
    assert fire_due(app.state.sessions, now=at - timedelta(seconds=1)) == 0
    counts: list[int] = []
    both = [threading.Thread(target=lambda: counts.append(fire_due(app.state.sessions, now=at)))
            for _ in range(2)]  # fmt: skip
    for t in both:
        t.start()
    for t in both:
        t.join()
    assert sorted(counts) == [0, 1]
    assert fire_due(app.state.sessions, now=at + timedelta(hours=2)) == 0  # next is tomorrow
    later = at + timedelta(days=3, hours=1)  # missed for days: fires once, not three times
    assert fire_due(app.state.sessions, now=later) == 1
    assert fire_due(app.state.sessions, now=later) == 0
    with session_scope(app.state.sessions) as session:
        jobs = session.query(Job).filter(Job.trigger_id == made["id"]).all()
        assert [j.target_version_id for j in jobs] == [version["id"]] * 2
    shown = api.get(f"{TRIGGERS}/{made['id']}").json()
    assert shown["fired"] == 2
    assert shown["last_error"] is None
    disabled = api.patch(f"{TRIGGERS}/{made['id']}", json={"enabled": False}).json()
    assert disabled["enabled"] is False
    assert fire_due(app.state.sessions, now=later + timedelta(days=5)) == 0
    assert api.delete(f"{TRIGGERS}/{made['id']}").status_code == 204
    assert len(api.get("/api/v1/jobs").json()["items"]) == 2  # what it launched stays
