"""The web UI in a real browser against a real `darkroom serve` with its engine."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from darkroom.client import Client
from tests.browser.conftest import shot
from tests.engine.conftest import wait_for
from tests.helpers import rendered_page
from tests.unit.test_inference_models import DOCLAYNET, model_path

pytestmark = pytest.mark.browser

TALKER = """
import time

def run(ctx):
    for i in range(30):
        print(f"step {i}", flush=True)
        time.sleep(0.2)
"""
BROKEN = "def run(ctx):\n    raise KeyError('missing column')\n"
FIXED = "def run(ctx):\n    print('fixed', flush=True)\n"


def sign_in(page, server):
    page.goto(f"{server.url}/datasets")
    expect(page).to_have_url(re.compile(r"/login"))
    shot(page, "login")
    page.fill("input[name=token]", "wrong")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    page.fill("input[name=token]", server.token)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/datasets$"))


def test_pages_boxes_live_logs_and_rerun(page, ui_server):
    dr = Client(ui_server.url, ui_server.token)
    ds = dr.create_dataset("papers", "rendered pages")
    v = dr.create_version(ds["id"], "v1")
    for name in ("Title", "Text", "Section-header"):
        dr.create_label(v["id"], name)
    dr.upload_assets(v["id"], [(f"p{i}.png", rendered_page(seed=i)[0]) for i in range(2)])
    mv = dr.upload_model_version(dr.create_model("doclaynet")["id"], model_path(*DOCLAYNET))
    pre = dr.launch_job("yolo-preannotation", v["id"], model_version_id=mv["id"])
    wait_for(lambda: dr.get_job(pre["id"]), lambda j: j["status"] == "succeeded", 120)

    sign_in(page, ui_server)
    expect(page.get_by_role("link", name="papers")).to_be_visible()
    shot(page, "datasets")
    page.get_by_role("link", name="papers").click()
    page.get_by_role("link", name="v1").click()
    expect(page.locator(".tile")).to_have_count(2)
    expect(page.locator(".tile rect.box").first).to_be_attached()
    assert page.locator(".tile rect.box").count() >= 2
    shot(page, "version-assets")

    # the Process form: processing -> model -> version -> parameters, validated by field
    page.goto(f"{ui_server.url}/versions/{v['id']}")
    page.click("#process")
    page.select_option("#processing", "yolo-preannotation")
    page.select_option("#model", label="doclaynet")
    page.select_option("#model_version", label="v1 (yolov8)")
    expect(page.locator("#label-match")).to_contain_text("Text ✓")
    expect(page.locator("#f-batch_size")).to_have_value("8")
    page.fill("#f-batch_size", "4")
    page.fill("#f-confidence_threshold", "2")
    shot(page, "process-form")
    page.click("#launch-button")
    expect(page.locator(".field-error[data-field=confidence_threshold]")).to_be_visible()
    expect(page.locator("#f-batch_size")).to_have_value("4")
    shot(page, "process-form-error")
    page.fill("#f-confidence_threshold", "0.3")
    page.click("#launch-button")
    expect(page).to_have_url(re.compile(r"/jobs/\d+"))
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=60_000)
    expect(page.locator("body")).to_contain_text('"batch_size": 4')

    dr.create_processing(name="talker", type="custom", source={"kind": "inline", "code": TALKER})
    job = dr.launch_job("talker", v["id"])
    page.goto(f"{ui_server.url}/jobs/{job['id']}")
    expect(page.locator("#rerun")).to_be_disabled()
    expect(page.locator("#log")).to_contain_text("step 10")  # arrived after the page loaded
    shot(page, "job-running")
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=30_000)
    expect(page.locator("#log")).to_contain_text("step 29")
    expect(page.locator("#rerun")).to_be_enabled()

    page.goto(f"{ui_server.url}/jobs")
    expect(page.locator("table")).to_contain_text("talker")
    expect(page.locator("table")).to_contain_text("yolo-preannotation")
    shot(page, "jobs")

    dr.create_processing(name="broken", type="custom", source={"kind": "inline", "code": BROKEN})
    bad = dr.launch_job("broken", v["id"])
    wait_for(lambda: dr.get_job(bad["id"]), lambda j: j["status"] == "failed")
    page.goto(f"{ui_server.url}/jobs/{bad['id']}")
    expect(page.locator("#trace")).to_contain_text("KeyError: 'missing column'")
    shot(page, "job-failed")
    dr.update_processing("broken", source={"kind": "inline", "code": FIXED})
    page.click("#rerun")
    expect(page.locator("#runs tbody tr")).to_have_count(2)
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=30_000)
    expect(page.locator("#runs")).to_contain_text("failed")
    shot(page, "job-rerun")

    for path, name in (("/processings", "processings"), ("/models", "models")):
        page.goto(f"{ui_server.url}{path}")
        shot(page, name)
    expect(page.locator("table")).to_contain_text("yolov8")
    page.set_viewport_size({"width": 420, "height": 800})
    page.goto(f"{ui_server.url}/versions/{v['id']}")
    expect(page.locator(".tile").first).to_be_visible()
    shot(page, "version-narrow")
    dr.close()
