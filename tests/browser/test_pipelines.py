"""Pipelines and webhooks in a real browser: a webhook added on its page, a pipeline launched
from a version's Process dialog, its run drawn as a live graph, a failed step fixed and re-run,
and the webhook's delivery log."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from darkroom.client import Client
from tests.browser.test_pages import shots, sign_in
from tests.engine.conftest import ENGINE_ENV
from tests.engine.test_webhooks import Receiver
from tests.helpers import image_bytes
from tests.servers import Server, start_server, stop_server

pytestmark = pytest.mark.browser

OK = "def run(ctx):\n    print('fine', flush=True)\n"
BROKEN = "def run(ctx):\n    raise KeyError('missing column')\n"
SPLITTER = """
def run(ctx):
    ids = [a.id for page in ctx.iter_asset_pages() for a in page]
    ctx.create_output_version("half", asset_ids=ids[:1])
"""


@pytest.fixture
def hooked_server(tmp_path: Path) -> Iterator[Server]:
    env = {**ENGINE_ENV, "DARKROOM_WEBHOOKS_ALLOW_PRIVATE": "true"}
    server = start_server(tmp_path / "home", env)
    yield server
    stop_server(server)


def test_a_pipeline_run_is_a_live_graph_rerun_from_its_failed_step(page, hooked_server, request):
    receiver = Receiver()
    dr = Client(hooked_server.url, hooked_server.token)
    request.addfinalizer(dr.close)
    request.addfinalizer(receiver.server.shutdown)
    v = dr.create_version(dr.create_dataset("docs")["id"], "pages")
    dr.upload_assets(v["id"], [("a.jpg", image_bytes(seed=1))])
    dr.create_processing(name="ok", type="custom", source={"kind": "inline", "code": OK})
    dr.create_processing(name="split", type="custom",
                         source={"kind": "inline", "code": SPLITTER})  # fmt: skip
    dr.create_processing(name="check", type="custom", source={"kind": "inline", "code": BROKEN})
    dr.create_pipeline("chain", [
        {"name": "first", "processing": "split"},
        {"name": "check", "processing": "check", "input": "first"},
        {"name": "last", "processing": "ok", "input": "check"},
        {"name": "side", "processing": "ok"},
    ])  # fmt: skip
    sign_in(page, hooked_server)

    page.goto(f"{hooked_server.url}/webhooks")
    page.fill("#webhook-form input[name=url]", receiver.url)
    page.click("#webhook-form button[type=submit]")
    expect(page.locator("#webhook-secret")).to_contain_text("shown here only")
    expect(page.locator("#webhooks")).to_contain_text(receiver.url)

    page.goto(f"{hooked_server.url}/versions/{v['id']}")
    page.click("#process")
    modal = page.locator("dialog#modal")
    expect(modal).to_be_visible()
    modal.locator("#pipeline").select_option("chain")
    modal.locator("#launch-pipeline").click()
    expect(page).to_have_url(re.compile(r"/pipeline-runs/\d+\?notice=pipeline-launched$"))
    expect(page.locator("#pipeline-status")).to_have_text("failed", timeout=60_000)  # live
    expect(page.locator("#pipeline-rerun")).to_be_visible()
    graph = page.locator("#pipeline-graph")
    expect(graph.locator("[data-node=first]")).to_have_attribute("data-status", "succeeded")
    expect(graph.locator("[data-node=check]")).to_have_attribute("data-status", "failed")
    expect(graph.locator("[data-node=last]")).to_have_attribute("data-status", "blocked")
    expect(graph.locator("[data-node=side]")).to_have_attribute("data-status", "succeeded")
    shots(page, "pipeline-run-failed")

    graph.locator("[data-node=check]").click()  # the step's job, with its trace
    expect(page).to_have_url(re.compile(r"/jobs/\d+$"))
    expect(page.locator("body")).to_contain_text("KeyError")
    page.go_back()
    expect(page.locator("#pipeline-cancel")).to_have_count(0)  # the buttons follow the status
    dr.update_processing("check", source={"kind": "inline", "code": OK})
    page.click("#pipeline-rerun")
    expect(page.locator("#notice")).to_contain_text("the succeeded ones are kept")
    expect(page.locator("#pipeline-status")).to_have_text("succeeded", timeout=60_000)
    expect(graph.locator("[data-node=last]")).to_have_attribute("data-status", "succeeded")
    expect(page.locator("#pipeline-steps tr[data-step=check]")).to_contain_text("2 runs")
    shots(page, "pipeline-run")

    page.goto(f"{hooked_server.url}/datasets/{v['dataset_id']}")  # the lineage graph
    lineage = page.locator("#lineage")
    expect(lineage.locator("[data-node]")).to_have_count(2)
    expect(lineage).to_contain_text("chain · split r1 · job")
    shots(page, "dataset-lineage")

    page.goto(f"{hooked_server.url}/pipelines/chain")
    expect(page.locator("#pipeline-runs")).to_contain_text("succeeded")
    shots(page, "pipeline")
    [hook] = dr.list_webhooks()
    page.goto(f"{hooked_server.url}/webhooks/{hook['id']}")
    expect(page.locator("#deliveries")).to_contain_text("pipeline_run.ended", timeout=15_000)
    expect(page.locator("#deliveries .badge.succeeded").first).to_have_text("delivered")
    shots(page, "webhook-deliveries")
