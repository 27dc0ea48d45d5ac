"""Webhook destinations: private and loopback ranges are refused unless allowed; bad events."""

from __future__ import annotations

import pytest

WEBHOOKS = "/api/v1/webhooks"


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/hook", "http://localhost/hook", "http://10.1.2.3/", "http://[::1]/",
     "http://169.254.169.254/latest/meta-data", "http://192.168.0.10/", "http://0.0.0.0/",
     "ftp://example.com/", "not a url"],
)  # fmt: skip
def test_private_loopback_and_odd_destinations_are_refused(api, url):
    r = api.post(WEBHOOKS, json={"url": url})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "destination_refused"
    assert r.json()["error"]["details"]["loc"] == ["url"]
    assert api.get(WEBHOOKS).json()["items"] == []


def test_allowed_by_the_admin_setting_and_kept_per_organization(app, api, other_org_api):
    app.state.settings.webhooks_allow_private = True
    assert (
        api.post(WEBHOOKS, json={"url": "http://127.0.0.1:9/", "events": ["nope"]}).status_code
        == 422
    )
    short = api.post(WEBHOOKS, json={"url": "http://127.0.0.1:9/", "secret": "short"})
    assert short.status_code == 422
    made = api.post(WEBHOOKS, json={"url": "http://127.0.0.1:9/", "events": ["run.ended"]})
    assert made.status_code == 201, made.text
    hook = made.json()
    assert len(hook["secret"]) >= 32
    assert "secret" not in api.get(f"{WEBHOOKS}/{hook['id']}").json()  # shown once
    assert other_org_api.get(f"{WEBHOOKS}/{hook['id']}").status_code == 404
    assert other_org_api.get(f"{WEBHOOKS}/{hook['id']}/deliveries").status_code == 404
    assert api.get(f"{WEBHOOKS}/{hook['id']}/deliveries").json()["items"] == []
    assert api.delete(f"{WEBHOOKS}/{hook['id']}").status_code == 204
