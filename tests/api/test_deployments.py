"""Deployments through the HTTP API: a real DocLayNet model served by real replica processes
(sandboxed), predictions logged, bad input refused, replicas killed and restarted."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.helpers import image_bytes, png_header_only, rendered_page
from tests.unit.test_inference_models import DOCLAYNET, model_path

DEPLOYMENTS = "/api/v1/deployments"


def _model_version(api: TestClient) -> dict:
    model = api.post("/api/v1/models", json={"name": "doclaynet"}).json()
    with open(model_path(*DOCLAYNET), "rb") as fh:
        r = api.post(f"/api/v1/models/{model['id']}/versions", files={"file": ("m.onnx", fh)},
                     data={"name": "yolov8n"})  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()


def _deploy(api: TestClient, mv: dict, name: str = "pages", **settings: object) -> dict:
    r = api.post(DEPLOYMENTS, json={"name": name, "model_version_id": mv["id"],
                                    "settings": settings})  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()


def _wait_status(api: TestClient, deployment_id: int, wanted: str, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        d = api.get(f"{DEPLOYMENTS}/{deployment_id}").json()
        if d["status"] == wanted:
            return d
        assert time.monotonic() < deadline, d
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _overlap(box: list[float], region: tuple[int, int, int, int]) -> float:
    x, y, w, h = box
    rx0, ry0, rx1, ry1 = region
    inter = max(0, min(x + w, rx1) - max(x, rx0)) * max(0, min(y + h, ry1) - max(y, ry0))
    return inter / ((rx1 - rx0) * (ry1 - ry0))


def test_serve_predict_and_log(api):
    mv = _model_version(api)
    d = _deploy(api, mv, labels=["Text", "Title"], sampling_rate=1.0)
    assert d["status"] == "starting"
    assert d["settings"]["labels"] == ["Text", "Title"]
    assert d["revision"]["number"] == 1
    page, paragraph = rendered_page()

    r = api.post(f"{DEPLOYMENTS}/{d['id']}/predict", content=page,
                 headers={"Content-Type": "image/png"})  # fmt: skip
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["model_version_id"] == mv["id"]
    assert first["revision"] == 1
    assert (first["width"], first["height"]) == (850, 1100)
    assert {s["label"] for s in first["shapes"]} <= {"Text", "Title"}
    texts = [s for s in first["shapes"] if s["label"] == "Text" and s["score"] > 0.5]
    assert any(_overlap(s["bbox"], paragraph) > 0.6 for s in texts), first["shapes"]
    lat = first["latency_ms"]
    assert 0 <= lat["queue"] <= lat["total"]
    assert 0 < lat["inference"] <= lat["total"]
    assert first["image_sha256"]  # sampling_rate 1: stored
    # by name, as multipart
    r = api.post(f"{DEPLOYMENTS}/pages/predict", files={"file": ("p.png", page, "image/png")})
    assert r.status_code == 200, r.text
    assert r.json()["shapes"] == first["shapes"]
    assert _wait_status(api, d["id"], "serving")["replicas"][0]["state"] == "ready"

    log = api.get(f"{DEPLOYMENTS}/{d['id']}/predictions").json()
    assert [p["id"] for p in log["items"]] == [r.json()["id"], first["id"]]  # newest first
    assert log["items"][1]["shapes"] == first["shapes"]
    oldest = api.get(
        f"{DEPLOYMENTS}/{d['id']}/predictions", params={"order": "oldest", "limit": 1}
    ).json()
    assert [p["id"] for p in oldest["items"]] == [first["id"]]
    assert oldest["next"] == first["id"]
    by = {k: api.get(f"{DEPLOYMENTS}/{d['id']}/predictions", params={k: v}).json()["items"]
          for k, v in {"label": "Text", "min_score": 1.0, "model_version_id": mv["id"] + 1,
                       "until": "2000-01-01T00:00:00Z"}.items()}  # fmt: skip
    assert len(by["label"]) == 2
    assert by["min_score"] == by["model_version_id"] == by["until"] == []
    assert api.get(f"/api/v1/blobs/{first['image_sha256']}").status_code in (404, 405)
    figures = api.get(f"{DEPLOYMENTS}/{d['id']}/figures", params={"minutes": 5}).json()
    assert figures["requests"] == 2
    assert sum(figures["per_minute"]) == 2
    assert figures["per_label"]["Text"] == 2 * len([s for s in first["shapes"]
                                                    if s["label"] == "Text"])  # fmt: skip
    assert figures["latency_p50_ms"] > 0

    # the flywheel: review, then send to a dataset version as assets with their boxes
    second = log["items"][0]["id"]
    assert api.get(f"/api/v1/predictions/{first['id']}/image").content == page
    r = api.post(f"{DEPLOYMENTS}/{d['id']}/predictions/review",
                 json={"ids": [first["id"]], "status": "accepted"})  # fmt: skip
    assert r.json()[0]["review_status"] == "accepted"
    ds = api.post("/api/v1/datasets", json={"name": "served"}).json()
    target = api.post(f"/api/v1/datasets/{ds['id']}/versions", json={"name": "v1"}).json()
    r = api.post(f"{DEPLOYMENTS}/{d['id']}/predictions/send",
                 json={"ids": [first["id"], second], "version_id": target["id"]})  # fmt: skip
    assert r.status_code == 200, r.text
    sent = r.json()
    assert [a["metadata"]["prediction_id"] for a in sent] == [first["id"], second]
    assert sent[0]["filename"] == f"pages/prediction-{first['id']}.png"
    annotations = [api.get(f"/api/v1/assets/{x['id']}/annotations").json()["items"] for x in sent]
    authors = [[a["author_kind"] for a in items] for items in annotations]
    assert authors == [["user"], ["prediction"]]  # accepted: ground truth; the other: to fix
    truth = annotations[0][0]["shapes"]
    assert [(s["label"], s["bbox"]) for s in truth] == [
        (s["label"], pytest.approx(s["bbox"])) for s in first["shapes"]]  # fmt: skip
    statuses = {p["id"]: p["review_status"] for p in api.get(
        f"{DEPLOYMENTS}/{d['id']}/predictions").json()["items"]}  # fmt: skip
    assert statuses == {first["id"]: "accepted", second: "fixed"}
    api.post(f"{DEPLOYMENTS}/{d['id']}/predictions/review",
             json={"ids": [second], "status": "rejected"})  # fmt: skip
    r = api.post(f"{DEPLOYMENTS}/{d['id']}/predictions/send",
                 json={"ids": [second], "version_id": target["id"]})  # fmt: skip
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "not_sendable"

    # a rollout: new settings make revision 2; predictions say which revision answered
    r = api.patch(f"{DEPLOYMENTS}/{d['id']}", json={"settings": {"labels": ["text"]}})
    assert r.status_code == 200
    assert r.json()["revision"]["number"] == 2
    deadline = time.monotonic() + 60
    while True:
        answer = api.post(f"{DEPLOYMENTS}/{d['id']}/predict", content=page).json()
        if answer["revision"] == 2:
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert {s["label"] for s in answer["shapes"]} == {"Text"}
    history = api.get(f"{DEPLOYMENTS}/{d['id']}/revisions").json()
    assert [(h["number"], h["settings"]["labels"]) for h in history] == [
        (1, ["Text", "Title"]), (2, ["text"])]  # fmt: skip

    # stopped: 409, and no replica process is left
    pids = [r["pid"] for r in api.get(f"{DEPLOYMENTS}/{d['id']}").json()["replicas"]]
    assert pids
    assert api.post(f"{DEPLOYMENTS}/{d['id']}/stop").json()["status"] == "stopped"
    r = api.post(f"{DEPLOYMENTS}/{d['id']}/predict", content=page)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "deployment_stopped"
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, pids
        time.sleep(0.1)


def test_bad_input_tokens_and_other_organizations(api, other_org_api, anon, app):
    mv = _model_version(api)
    d = _deploy(api, mv)
    url = f"{DEPLOYMENTS}/{d['id']}/predict"
    cases = {
        b"": (422, "empty_file"),
        b"this is not an image": (415, "unsupported_media_type"),
        image_bytes()[:200]: (422, "corrupt_image"),
        png_header_only(60_000, 60_000): (413, "image_too_large"),
    }
    for body, (code, error) in cases.items():
        r = api.post(url, content=body)
        assert (r.status_code, r.json()["error"]["code"]) == (code, error), (body[:20], r.text)
    app.state.settings.max_predict_bytes = 1000
    r = api.post(url, content=image_bytes(400, 400))
    assert r.status_code == 413, r.text
    app.state.settings.max_predict_bytes = 50 * 1024 * 1024

    # refused settings name the field
    r = api.post(DEPLOYMENTS, json={"name": "x", "model_version_id": mv["id"],
                                    "settings": {"max_batch": 0}})  # fmt: skip
    assert r.status_code == 422
    assert r.json()["error"]["details"]["loc"] == ["settings", "max_batch"]
    r = api.post(DEPLOYMENTS, json={"name": "x", "model_version_id": mv["id"],
                                    "settings": {"labels": ["Cat"]}})  # fmt: skip
    assert r.status_code == 422
    assert "not labels of the model: Cat" in r.text
    assert api.post(DEPLOYMENTS, json={"name": "pages", "model_version_id": mv["id"]}
                    ).status_code == 409  # fmt: skip

    # another organization sees nothing; anonymous callers are refused
    assert other_org_api.post(url, content=image_bytes()).status_code == 404
    assert other_org_api.get(f"{DEPLOYMENTS}/{d['id']}").status_code == 404
    r = other_org_api.post(f"{DEPLOYMENTS}/{d['id']}/predictions/review",
                           json={"ids": [1], "status": "accepted"})  # fmt: skip
    assert r.status_code == 404
    assert other_org_api.get("/api/v1/predictions/1").status_code == 404
    assert other_org_api.post(DEPLOYMENTS, json={"name": "steal", "model_version_id": mv["id"]}
                              ).status_code == 404  # fmt: skip
    assert anon.post(url, content=image_bytes()).status_code == 401

    # a deployment token: its predict and nothing else
    token = api.post(f"{DEPLOYMENTS}/{d['id']}/tokens", json={"name": "app"}).json()["token"]
    other = _deploy(api, mv, name="other", replicas=1)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        r = client.post(url, content=image_bytes(320, 240))
        assert r.status_code == 200, r.text
        assert client.post(f"{DEPLOYMENTS}/{other['id']}/predict",
                           content=image_bytes()).status_code == 403  # fmt: skip
        for method, path in [("GET", "/api/v1/datasets"), ("GET", f"{DEPLOYMENTS}/{d['id']}"),
                             ("GET", f"{DEPLOYMENTS}/{d['id']}/predictions"),
                             ("POST", f"{DEPLOYMENTS}/{d['id']}/tokens"),
                             ("GET", "/api/v1/model-versions/1")]:  # fmt: skip
            assert client.request(method, path, json={}).status_code == 403, path
        assert client.get("/datasets", follow_redirects=False).status_code == 303  # no web
    api.post(f"{DEPLOYMENTS}/{other['id']}/stop")


# The supervisor's own logic: the database behind it does not matter (SQLite only).
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
def test_a_model_that_cannot_load_fails_the_deployment(api, settings):
    mv = _model_version(api)
    blob = (
        Path(settings.resolved_storage_url) / mv["weights_sha256"][:2] / mv["weights_sha256"][2:4]
    )
    (blob / mv["weights_sha256"]).write_bytes(b"rotten weights")
    d = _deploy(api, mv)
    failed = _wait_status(api, d["id"], "failed", timeout_s=90)
    assert "the model does not load" in failed["status_reason"], failed
    r = api.post(f"{DEPLOYMENTS}/{d['id']}/predict", content=image_bytes())
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "deployment_failed"
    assert "does not load" in r.json()["error"]["message"]


@SQLITE_ONLY
@pytest.mark.slow
def test_a_killed_replica_fails_its_requests_at_once_and_is_restarted(api):
    mv = _model_version(api)
    d = _deploy(api, mv, max_batch=1)
    page, _ = rendered_page()
    assert api.post(f"{DEPLOYMENTS}/{d['id']}/predict", content=page).status_code == 200
    [replica] = api.get(f"{DEPLOYMENTS}/{d['id']}").json()["replicas"]
    answers: list[tuple[int, str, float]] = []

    def ask() -> None:
        started = time.monotonic()
        r = api.post(f"{DEPLOYMENTS}/{d['id']}/predict", content=page)
        answers.append((r.status_code, r.json().get("error", {}).get("code", ""),
                        time.monotonic() - started))  # fmt: skip

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)  # 4 queued behind one another (max_batch 1): some are in flight
    killed_at = time.monotonic()
    os.kill(replica["pid"], signal.SIGKILL)
    for t in threads:
        t.join(30)
    assert len(answers) == 4
    lost = [a for a in answers if a[0] == 503]
    assert lost, answers
    assert all(code == "replica_lost" for _, code, _ in lost), answers
    assert all(status in (200, 503) for status, _, _ in answers), answers
    assert time.monotonic() - killed_at < 5
    # restarted: a new process serves again
    deadline = time.monotonic() + 60
    while True:
        replicas = api.get(f"{DEPLOYMENTS}/{d['id']}").json()["replicas"]
        if replicas and replicas[0]["state"] == "ready" and replicas[0]["pid"] != replica["pid"]:
            break
        assert time.monotonic() < deadline, replicas
        time.sleep(0.1)
    assert replicas[0]["restarts"] == 1
    assert api.post(f"{DEPLOYMENTS}/{d['id']}/predict", content=page).status_code == 200
    assert not _alive(replica["pid"])
