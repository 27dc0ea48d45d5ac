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
        ctx.progress(i + 1, 30, force=True)
        time.sleep(0.25)
"""
BROKEN = "def run(ctx):\n    raise KeyError('missing column')\n"
FIXED = "def run(ctx):\n    print('fixed', flush=True)\n"
SIZES = {"wide": {"width": 1280, "height": 800}, "narrow": {"width": 420, "height": 800}}


def sign_in(page, server):
    page.goto(f"{server.url}/datasets")
    expect(page).to_have_url(re.compile(r"/login"))
    page.fill("input[name=token]", "wrong")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    page.fill("input[name=token]", server.token)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/datasets$"))


def fits_the_window(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_seed_flow_in_the_browser(page, ui_server):
    """Labels in settings, Process in the modal, live logs and progress, boxes, the asset view,
    a failure's stack trace fixed in the processing editor and re-run from the job page."""
    dr = Client(ui_server.url, ui_server.token)
    ds = dr.create_dataset("papers", "rendered pages")
    v = dr.create_version(ds["id"], "v1")
    dr.upload_assets(v["id"], [(f"p{i}.png", rendered_page(seed=i)[0]) for i in range(2)])
    dr.upload_model_version(dr.create_model("doclaynet")["id"], model_path(*DOCLAYNET))

    sign_in(page, ui_server)
    page.get_by_role("link", name="papers").click()
    page.locator("table").get_by_role("link", name="v1", exact=True).click()
    expect(page.locator(".tile")).to_have_count(2)
    expect(page.locator(".tile rect.box")).to_have_count(0)
    expect(page.locator("main")).to_contain_text("No label yet")

    # Settings -> Labels: the model will only write these
    page.locator("nav.tabs").get_by_role("link", name="Settings → Labels").click()
    expect(page.locator("main")).to_contain_text("No label yet: add the first one")
    for name in ("Title", "Text", "Section-header", "Caption"):
        page.fill("#new-label", name)
        page.click("#add-label button[type=submit]")
        expect(page.locator(f"#labels tr[data-label='{name}']")).to_be_visible()
    colours = [page.locator(f"#labels tr[data-label='{name}'] input[name=color]").input_value()
               for name in ("Title", "Text", "Section-header", "Caption")]  # fmt: skip
    assert len(set(colours)) == 4, f"labels added one after another share colours: {colours}"
    page.fill("#new-label", "text")
    page.click("#add-label button[type=submit]")
    expect(page.locator("#labels-error")).to_contain_text("already exists")
    row = page.locator("#labels tr[data-label='Caption']")
    row.locator("input[name=name]").fill("Figure")
    row.locator("input[name=color]").fill("#00aa00")
    row.get_by_role("button", name="Save").click()
    expect(page.locator("#labels tr[data-label='Figure'] input[name=color]")).to_have_value(
        "#00aa00"
    )
    page.locator("#labels tr[data-label='Figure']").get_by_role("button", name="Delete").click()
    expect(page.locator("#labels tr[data-label='Figure']")).to_have_count(0)

    # Process, in a modal: processing -> model -> version -> parameters, validated by field
    page.locator("nav.tabs").get_by_role("link", name="Assets").click()
    page.click("#process")
    modal = page.locator("dialog#modal")
    expect(modal).to_be_visible()
    modal.locator("#processing").select_option("yolo-preannotation")
    expect(modal.locator("#description")).to_contain_text("model")
    # the only model and its only version are chosen already
    expect(modal.locator("#model option:checked")).to_have_text("doclaynet")
    expect(modal.locator("#model_version option:checked")).to_have_text("v1 (yolov8)")
    expect(modal.locator("#label-match")).to_contain_text("Text ✓")
    expect(modal.locator("#f-batch_size")).to_have_value("8")
    modal.locator("#f-batch_size").fill("4")
    modal.locator("#f-confidence_threshold").fill("2")
    modal.locator("#launch-button").click()
    expect(modal.locator(".field-error[data-field=confidence_threshold]")).to_be_visible()
    expect(modal.locator("#f-batch_size")).to_have_value("4")
    shots(page, "process-modal-error")
    modal.locator("#f-confidence_threshold").fill("0.3")
    modal.locator("#launch-button").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+\?notice=launched$"))
    pre_url = page.url.split("?")[0]
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=60_000)
    expect(page.locator("body")).to_contain_text('"batch_size": 4')
    expect(page.locator("#runs")).to_contain_text(re.compile(r"\d+\.\d s"))  # running time
    expect(page.locator("#log")).to_contain_text("images: 2 in")
    # Findings B7: "its first run is queued…" stayed once the job had ended
    expect(page.locator("#log")).not_to_have_attribute("data-live", "yes")
    expect(page).to_have_url(re.compile(r"/jobs/\d+$"))
    expect(page.locator("#notice")).to_have_count(0)

    # boxes on the thumbnails, then the asset view with the run as their author
    page.click("#input-version")
    expect(page.locator(".tile rect.box").first).to_be_attached()
    assert page.locator(".tile rect.box").count() >= 2
    page.locator(".tile a.frame").first.click()
    expect(page).to_have_url(re.compile(r"/assets/\d+$"))
    expect(page.locator("#shapes")).to_contain_text("of job #")
    expect(page.locator("#asset-frame rect.box").first).to_be_attached()
    texts = page.locator("#asset-frame .shape[data-label] text.box-name")
    expect(texts.first).to_be_attached()  # each box says what it is
    named = texts.first.text_content()
    assert named.split()[0] in ("Title", "Text", "Section-header"), named
    toggle = page.locator("#label-toggles input").first
    label_id = toggle.get_attribute("data-toggle-label")
    shapes = page.locator(f"#asset-frame .shape[data-label='{label_id}']")
    toggle.uncheck()
    expect(shapes.first).to_be_hidden()
    toggle.check()
    expect(shapes.first).to_be_visible()
    shots(page, "asset-boxes-named")
    page.get_by_role("link", name=re.compile(r"job #\d+")).first.click()
    expect(page).to_have_url(re.compile(re.escape(pre_url) + r"\?run=\d+$"))

    # a running job: the log grows live, the progress bar shows rate and time left
    dr.create_processing(name="talker", type="custom", source={"kind": "inline", "code": TALKER})
    job = dr.launch_job("talker", v["id"])
    page.goto(f"{ui_server.url}/jobs/{job['id']}")
    expect(page.locator("#rerun")).to_be_disabled()
    expect(page.locator("#rerun-why")).to_contain_text("once run")
    expect(page.locator("#log")).to_contain_text("step 10")  # arrived after the page loaded
    expect(page.locator("#progress")).to_contain_text(re.compile(r"items/s.*left", re.S))
    shots(page, "job-running")
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=30_000)
    expect(page.locator("#log")).to_contain_text("step 29")
    expect(page.locator("#progress")).to_contain_text("30/30 (100%)")
    expect(page.locator("#rerun")).to_be_enabled()

    # a failure: its stack trace; fixed in the processing editor (a new revision); re-run
    dr.create_processing(name="broken", type="custom", source={"kind": "inline", "code": BROKEN})
    bad = dr.launch_job("broken", v["id"])
    wait_for(lambda: dr.get_job(bad["id"]), lambda j: j["status"] == "failed")
    page.goto(f"{ui_server.url}/jobs/{bad['id']}")
    expect(page.locator("#trace")).to_contain_text("KeyError: 'missing column'")
    shots(page, "job-failed")
    page.get_by_role("link", name="broken").click()
    page.fill("#p-code", FIXED)
    page.click("#save-processing")
    expect(page.locator("#revisions tbody tr")).to_have_count(2)
    page.goto(f"{ui_server.url}/jobs/{bad['id']}")
    page.click("#rerun")
    expect(page.locator("#runs tbody tr")).to_have_count(2)
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=30_000)
    runs = page.locator("#runs tbody tr")
    expect(runs.nth(0)).to_contain_text("failed")
    expect(runs.nth(0).locator("td").nth(2)).to_have_text("1")
    expect(runs.nth(1)).to_contain_text("succeeded")
    expect(runs.nth(1).locator("td").nth(2)).to_have_text("2")
    shots(page, "job-rerun")

    # the jobs history and its filters
    page.goto(f"{ui_server.url}/jobs")
    expect(page.locator("#jobs")).to_contain_text("talker")
    expect(page.locator("#jobs")).to_contain_text("papers / v1")
    page.select_option("select[name=status]", "cancelled")
    page.click("form.filters button")
    expect(page.locator("main")).to_contain_text("No job matches these filters")
    dr.close()


def test_every_page_at_both_sizes(page, ui_server, console_errors):
    """Each page renders with no console error, fits a narrow window and says what is empty."""
    dr = Client(ui_server.url, ui_server.token)
    ds = dr.create_dataset("empty", "nothing yet")
    v = dr.create_version(ds["id"], "v1")
    full = dr.create_version(ds["id"], "v2")
    dr.create_label(full["id"], "Text")
    asset = dr.upload_assets(full["id"], [("p.png", rendered_page(seed=3)[0])])[0]
    dr.create_processing(name="hello", type="custom", description="says hello",
                         source={"kind": "inline", "code": FIXED})  # fmt: skip
    job = dr.launch_job("hello", full["id"])
    wait_for(lambda: dr.get_job(job["id"]), lambda j: j["status"] == "succeeded")
    pages = {
        "datasets": ("/datasets", "empty"),
        "dataset": (f"/datasets/{ds['id']}", "v2"),
        "version-empty": (f"/versions/{v['id']}", "No asset yet"),
        "version-assets": (f"/versions/{full['id']}", "p.png"),
        "version-jobs": (f"/versions/{full['id']}/jobs", "hello"),
        "version-jobs-empty": (f"/versions/{v['id']}/jobs", "No job has run on this version"),
        "version-labels": (f"/versions/{full['id']}/labels", "Add a label"),
        "process": (f"/versions/{full['id']}/process?processing=yolo-preannotation", "Model"),
        "asset": (f"/assets/{asset['id']}", "No shape on this image yet"),
        "jobs": ("/jobs", "hello"),
        "job": (f"/jobs/{job['id']}", "succeeded"),
        "processings": ("/processings", "yolo-preannotation"),
        "processing": ("/processings/yolo-preannotation", "batch_size"),
        "processing-new": ("/processings/new", "run(ctx)"),
        "models": ("/models", "No model yet"),
        "usage": ("/usage", "of running time in 1 run"),
        "not-found": ("/jobs/999999", "job 999999 not found"),
    }
    page.set_viewport_size(SIZES["wide"])
    page.goto(f"{ui_server.url}/login")
    shots(page, "login")
    sign_in(page, ui_server)
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        for name, (path, text) in pages.items():
            page.goto(f"{ui_server.url}{path}")
            expect(page.locator("main")).to_contain_text(text)
            shot(page, f"{name}-{size}")
            assert fits_the_window(page), f"{name} is wider than a {size} window"
            if name == "not-found":  # the browser logs the 404 status itself
                console_errors.remove(
                    "Failed to load resource: the server responded with a status of 404 (Not Found)"
                )
    dr.close()


def test_a_model_version_is_converted_from_its_page(page, ui_server):
    """Process on a model version: int8 quantization on sample pages, the job, the new version
    with its lineage and report, at both sizes."""
    dr = Client(ui_server.url, ui_server.token)
    v = dr.create_version(dr.create_dataset("docs")["id"], "pages")
    dr.upload_assets(v["id"], [(f"p{i}.png", rendered_page(seed=i)[0]) for i in range(2)])
    mv = dr.upload_model_version(dr.create_model("doclaynet")["id"], model_path(*DOCLAYNET),
                                 name="fp32")  # fmt: skip
    sign_in(page, ui_server)
    page.goto(f"{ui_server.url}/model-versions/{mv['id']}")
    page.click("#process-model")
    expect(page.locator("#processing")).to_have_value("model-conversion")
    page.select_option("#f-to", "int8")
    page.select_option("#sample_version", label="docs / pages")
    shots(page, "process-model")
    page.click("#launch-button")
    expect(page).to_have_url(re.compile(r"/jobs/\d+\?notice=launched$"))
    expect(page.locator("#input-model-version")).to_have_text("doclaynet / fp32")  # named
    job_id = int(page.url.rsplit("/", 1)[1].split("?")[0])
    wait_for(lambda: dr.get_job(job_id), lambda j: j["status"] in ("succeeded", "failed"), 120)
    assert dr.get_job(job_id)["status"] == "succeeded"
    page.reload()
    page.click("#output-model-version")
    expect(page.locator("h1")).to_have_text("doclaynet / fp32-int8")
    expect(page.locator("#source-version")).to_have_text("fp32")
    expect(page.locator("#conversion-report")).to_contain_text("onnx -> int8")
    expect(page.locator("#conversion-report")).to_contain_text("on 2 of version pages images")
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        shot(page, f"model-version-converted-{size}")
        assert fits_the_window(page), f"the converted version's page is wider than {size}"
    page.goto(f"{ui_server.url}/model-versions/{mv['id']}")
    expect(page.locator("#model-jobs")).to_contain_text("model-conversion")
    dr.close()


def test_status_and_running_time_are_live_without_a_reload(page, ui_server):
    """A pending job's page turns running when a slot frees, its running time ticks, and the
    jobs list shows a job launched elsewhere, all without reloading the page."""
    from tests.engine.conftest import SLEEP_SCHEMA, SLEEPER

    dr = Client(ui_server.url, ui_server.token)
    v = dr.create_version(dr.create_dataset("d")["id"], "v")
    dr.create_processing(name="sleeper", type="custom", parameters_schema=SLEEP_SCHEMA,
                         source={"kind": "inline", "code": SLEEPER})  # fmt: skip
    busy = [dr.launch_job("sleeper", v["id"], parameters={"seconds": 60}) for _ in range(2)]
    for job in busy:  # the server runs two at a time: both slots taken
        wait_for(lambda job=job: dr.get_job(job["id"]), lambda j: j["status"] == "running")
    waiting = dr.launch_job("sleeper", v["id"], parameters={"seconds": 3})
    sign_in(page, ui_server)
    page.goto(f"{ui_server.url}/jobs/{waiting['id']}")
    expect(page.locator("#job-status")).to_have_text("pending")
    expect(page.locator("#pending-why")).to_contain_text("waits for a worker's free slot")
    page.evaluate("window.__notReloaded = true")
    dr.cancel_run(busy[0]["runs"][0]["id"])
    expect(page.locator("#job-status")).to_have_text("running", timeout=10_000)
    expect(page.locator("#pending-why")).to_have_count(0)  # no stale text once it runs
    row = page.locator(f"tr[data-run='{waiting['runs'][0]['id']}']")
    expect(row.locator(".run-status")).to_have_text("running")
    expect(row.locator(".run-started")).not_to_have_text("")
    first = row.locator(".running-time").inner_text()
    page.wait_for_timeout(1200)
    assert row.locator(".running-time").inner_text() != first, "the running time does not tick"
    assert page.evaluate("window.__notReloaded === true")
    shots(page, "job-live-running")
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=15_000)  # then reloads
    expect(page.locator("#log")).not_to_have_attribute("data-live", "yes")

    page.goto(f"{ui_server.url}/jobs")
    page.evaluate("window.__notReloaded = true")
    late = dr.launch_job("sleeper", v["id"], parameters={"seconds": 1})
    expect(page.locator(f"#jobs a[href='/jobs/{late['id']}']")).to_be_visible(timeout=10_000)
    assert page.evaluate("window.__notReloaded === true")
    dr.cancel_run(busy[1]["runs"][0]["id"])
    dr.close()


def test_code_is_readable_editable_and_reached_from_a_trace(page, ui_server):
    """A built-in's code with line numbers, the editor's Tab and gutter, and a failed run's
    trace line that opens the processing at the failing line."""
    dr = Client(ui_server.url, ui_server.token)
    v = dr.create_version(dr.create_dataset("d")["id"], "v")
    broken = "def helper(row):\n    return row['missing']\n\n\ndef run(ctx):\n    helper({})\n"
    proc = dr.create_processing(name="broken", type="custom",
                                source={"kind": "inline", "code": broken})  # fmt: skip
    job = dr.launch_job("broken", v["id"])
    wait_for(lambda: dr.get_job(job["id"]), lambda j: j["status"] == "failed")
    sign_in(page, ui_server)

    page.goto(f"{ui_server.url}/processings/yolo-preannotation")
    main_file = page.locator("details#file-L")
    expect(main_file.locator("summary")).to_contain_text("yolo_preannotation.py")
    expect(main_file.locator("#L1")).to_contain_text('"""`yolo-preannotation`')
    expect(page.locator("details#file-detection-L summary")).to_contain_text("detection.py")
    page.locator("details#file-detection-L summary").click()
    expect(page.locator("#detection-L1 .ln")).to_have_text("1")
    shots(page, "processing-builtin-code")

    page.goto(f"{ui_server.url}/jobs/{job['id']}")
    links = page.locator("#trace a.trace-link")  # the run's frame, then the helper's
    expect(links.first).to_have_attribute("href", f"/processings/{proc['id']}#L6")
    link = links.last
    expect(link).to_have_attribute("href", f"/processings/{proc['id']}#L2")
    link.click()
    expect(page).to_have_url(re.compile(rf"/processings/{proc['id']}#L2$"))
    area = page.locator("#p-code")
    expect(area).to_be_focused()
    selected = page.evaluate(
        "(() => { const a = document.getElementById('p-code');"
        " return a.value.slice(a.selectionStart, a.selectionEnd); })()"
    )
    assert selected == "    return row['missing']"
    expect(page.locator(".editor .gutter")).to_contain_text("6")
    page.keyboard.press("End")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    page.keyboard.type("pass")
    assert "\n    pass" in area.input_value()
    expect(area).to_be_focused()  # Tab indented instead of leaving the field
    expect(page.locator(".editor .gutter")).to_contain_text("7")
    page.locator(f"#recent-jobs a[href='/jobs/{job['id']}']").click()  # and back to the job
    expect(page.locator("#selected-run")).to_have_text(f"Attempt 1 (run {job['runs'][0]['id']})")
    dr.close()


def test_two_runs_side_by_side_with_what_changed(page, ui_server):
    """The walkthrough's re-run: a failed run, the fix, a re-run with another parameter; both
    runs in two columns with revision, parameters (the changed one marked), code diff, logs."""
    dr = Client(ui_server.url, ui_server.token)
    v = dr.create_version(dr.create_dataset("d")["id"], "v")
    schema = {"type": "object", "properties": {"threshold": {"type": "number", "default": 0.5}}}
    dr.create_processing(name="flaky", type="custom", parameters_schema=schema,
                         source={"kind": "inline", "code": BROKEN})  # fmt: skip
    job = dr.launch_job("flaky", v["id"])
    wait_for(lambda: dr.get_job(job["id"]), lambda j: j["status"] == "failed")
    dr.update_processing("flaky", source={"kind": "inline", "code": FIXED})
    dr.rerun_job(job["id"], {"threshold": 0.8})
    wait_for(lambda: dr.get_job(job["id"]), lambda j: j["status"] == "succeeded")
    runs = dr.get_job(job["id"])["runs"]
    assert [r["parameters"] for r in runs] == [{"threshold": 0.5}, {"threshold": 0.8}]

    sign_in(page, ui_server)
    page.goto(f"{ui_server.url}/jobs/{job['id']}")
    page.click("#compare-runs")
    left, right = page.locator("#run-1"), page.locator("#run-2")
    expect(left.locator("h2")).to_contain_text("Attempt 1")
    expect(left.locator("h2 .badge")).to_have_text("failed")
    expect(left).to_contain_text("revision 1")
    expect(left.locator("pre.log")).to_contain_text("KeyError")
    expect(right.locator("h2")).to_contain_text("Attempt 2")
    expect(right.locator("h2 .badge")).to_have_text("succeeded")
    expect(right).to_contain_text("revision 2")
    expect(right.locator("pre.log")).to_contain_text("fixed")
    expect(left.locator("tr.changed")).to_contain_text("0.5")
    expect(right.locator("tr.changed")).to_contain_text("0.8")
    expect(page.locator("#code-diff .add")).to_contain_text("print('fixed', flush=True)")
    expect(page.locator("#code-diff .del")).to_contain_text("KeyError")
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        shot(page, f"compare-runs-{size}")
        assert fits_the_window(page), f"the comparison is wider than a {size} window"
    dr.close()


def test_process_modal_preselects_reports_every_error_and_keeps_launch_in_view(page, ui_server):
    dr = Client(ui_server.url, ui_server.token)
    v = dr.create_version(dr.create_dataset("papers")["id"], "v1")
    dr.create_label(v["id"], "Text")
    dr.upload_model_version(dr.create_model("doclaynet")["id"], model_path(*DOCLAYNET))
    sign_in(page, ui_server)
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        page.goto(f"{ui_server.url}/versions/{v['id']}")
        page.click("#process")
        modal = page.locator("dialog#modal")
        modal.locator("#processing").select_option("yolo-preannotation")
        # one model with one version: both chosen already, the parameters shown
        expect(modal.locator("#model")).to_have_value(re.compile(r"\d+"))
        expect(modal.locator("#model_version")).to_have_value(re.compile(r"\d+"))
        expect(modal.locator("#launch-button")).to_be_in_viewport()
        for field in modal.locator("#launch input[type=text], #launch textarea").all():
            box = field.bounding_box()
            assert box is not None
            assert box["x"] + box["width"] <= viewport["width"], f"{field} is clipped at {size}"
        modal.locator("#f-batch_size").fill("0")
        modal.locator("#f-confidence_threshold").fill("2")
        modal.locator("#f-label_mapping").fill('{"Text": paragraph}')
        modal.locator("#launch-button").click()
        for name in ("batch_size", "confidence_threshold", "label_mapping"):
            expect(modal.locator(f".field-error[data-field={name}]")).to_be_visible()
        expect(modal.locator("#f-label_mapping")).to_have_value('{"Text": paragraph}')
        expect(modal.locator("#launch-button")).to_be_in_viewport()
        shot(page, f"process-modal-errors-{size}")
    dr.close()


def test_smart_version_filters_are_picked_from_the_versions_labels_and_tags(page, ui_server):
    """Findings B4: the label and tag filters and the split were JSON to type in the modal."""
    from tests.helpers import image_bytes

    dr = Client(ui_server.url, ui_server.token)
    v = dr.create_version(dr.create_dataset("pets")["id"], "v1")
    for name in ("cat", "dog"):
        dr.create_label(v["id"], name)
    asset = dr.upload_assets(v["id"], [("a.jpg", image_bytes(seed=1))])[0]
    dr.update_asset(asset["id"], tags=["night"])
    sign_in(page, ui_server)
    page.goto(f"{ui_server.url}/versions/{v['id']}")
    page.click("#process")
    modal = page.locator("dialog#modal")
    modal.locator("#processing").select_option("smart-version")
    modal.locator("#f-labels_any").get_by_label("dog").check()
    modal.locator("#f-tags_any").get_by_label("night").check()
    modal.locator("input[name='split.train']").fill("0.5")
    modal.locator("input[name='split.val']").fill("0.5")
    shot(page, "process-modal-pickers")
    modal.locator("#launch-button").click()
    page.wait_for_url(re.compile(r"/jobs/\d+"))
    job = dr.get_job(int(re.search(r"/jobs/(\d+)", page.url).group(1)))
    assert job["parameters"]["labels_any"] == ["dog"]
    assert job["parameters"]["tags_any"] == ["night"]
    assert job["parameters"]["split"] == {"train": 0.5, "val": 0.5}
    dr.close()


def test_actions_say_what_they_did_and_a_refusal_leads_back(page, ui_server, console_errors):
    from tests.engine.conftest import SLEEP_SCHEMA, SLEEPER

    dr = Client(ui_server.url, ui_server.token)
    v = dr.create_version(dr.create_dataset("d")["id"], "v")
    dr.create_processing(name="sleeper", type="custom", parameters_schema=SLEEP_SCHEMA,
                         source={"kind": "inline", "code": SLEEPER})  # fmt: skip
    sign_in(page, ui_server)
    page.goto(f"{ui_server.url}/versions/{v['id']}/labels")
    page.fill("#new-label", "cat")
    page.click("#add-label button[type=submit]")
    expect(page.locator("#notice")).to_have_text("Label added.")

    job = dr.launch_job("sleeper", v["id"], parameters={"seconds": 0.2})
    wait_for(lambda: dr.get_job(job["id"]), lambda j: j["status"] == "succeeded")
    page.goto(f"{ui_server.url}/jobs/{job['id']}")
    dr.rerun_job(job["id"], {"seconds": 60})  # from elsewhere: this page does not know yet
    page.click("#rerun")  # refused: a run is active
    expect(page.locator("h1")).to_have_text("Error 409")
    console_errors.remove(
        "Failed to load resource: the server responded with a status of 409 (Conflict)"
    )
    page.click("#go-back")
    expect(page).to_have_url(re.compile(rf"/jobs/{job['id']}$"))
    page.on("dialog", lambda d: d.accept())
    page.click("#cancel")
    expect(page.locator("#notice")).to_contain_text("Cancel requested")
    wait_for(lambda: dr.get_job(job["id"]), lambda j: j["status"] == "cancelled")
    # the live page reloads itself when its run ends: a goto racing that reload was aborted
    expect(page.locator("#log")).not_to_have_attribute("data-live", "yes")
    page.goto(f"{ui_server.url}/jobs/{job['id']}")
    page.click("#rerun")
    expect(page.locator("#notice")).to_contain_text("Re-run launched")
    page.goto(f"{ui_server.url}/jobs")  # leave the live page before the server stops
    dr.cancel_run(dr.get_job(job["id"])["runs"][-1]["id"])
    dr.close()


def test_dark_mode_focus_and_keys(page, ui_server):
    dr = Client(ui_server.url, ui_server.token)
    v = dr.create_version(dr.create_dataset("d")["id"], "v")
    dr.upload_assets(v["id"], [("p.png", rendered_page(seed=1)[0])])
    sign_in(page, ui_server)
    page.goto(f"{ui_server.url}/versions/{v['id']}")
    light = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.emulate_media(color_scheme="dark")
    dark = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert (light, dark) == ("rgb(248, 250, 252)", "rgb(11, 18, 32)")
    surface = page.evaluate("getComputedStyle(document.querySelector('.tile')).backgroundColor")
    assert surface == "rgb(17, 24, 39)"
    shots(page, "version-dark")

    page.keyboard.press("/")  # the filters
    expect(page.locator("form.filters select").first).to_be_focused()
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focused field shows no outline"
    page.locator("main h1").click()  # back to the page, out of the field
    page.keyboard.press("p")
    expect(page.locator("dialog#modal")).to_be_visible()
    expect(page.locator("dialog#modal #processing")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("dialog#modal")).to_be_hidden()
    page.emulate_media(color_scheme="light")
    dr.close()


def test_datasets_versions_and_images_are_created_in_the_browser(
    page, ui_server, tmp_path, console_errors
):
    good = [tmp_path / "a.png", tmp_path / "b.png"]
    for i, path in enumerate(good):
        path.write_bytes(rendered_page(seed=20 + i)[0])
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    sign_in(page, ui_server)
    page.goto(f"{ui_server.url}/datasets")
    page.fill("#new-dataset-name", "pets")
    page.click("#new-dataset button[type=submit]")
    expect(page.locator("#notice")).to_contain_text("Dataset created")
    expect(page.locator("h1")).to_have_text("pets")
    page.goto(f"{ui_server.url}/datasets")
    page.fill("#new-dataset-name", "pets")
    page.click("#new-dataset button[type=submit]")
    expect(page.locator("#dataset-error")).to_contain_text("already exists")
    page.get_by_role("link", name="pets").click()
    page.fill("#new-version-name", "v1")
    page.click("#new-version button[type=submit]")
    expect(page.locator("#notice")).to_contain_text("Version created")
    expect(page.locator("h1")).to_contain_text("pets / v1")
    expect(page.locator("main")).to_contain_text("No asset yet")  # the notice is no filter

    page.set_input_files("#upload-files", [str(p) for p in (*good, bad)])
    expect(page.locator("#upload-status")).to_have_text("2 of 3 uploaded, 1 refused")
    expect(page.locator("#upload-rejected li")).to_have_count(1)
    expect(page.locator("#upload-rejected li")).to_have_text(
        "bad.png: not an image darkroom can read"
    )
    # Findings B3: the counts said "0 assets" until a click
    expect(page.locator("#version-counts")).to_contain_text("2 assets")
    expect(page.locator("#upload-rejected li")).to_have_count(1)  # and the refusals stay
    shots(page, "upload-refused")
    console_errors.remove(  # the browser logs the refusal's status itself
        "Failed to load resource: the server responded with a status of 415 "
        "(Unsupported Media Type)"
    )
    page.click("#upload-show")
    expect(page.locator(".tile")).to_have_count(2)


def test_export_and_import_from_the_settings_tab(page, ui_server, tmp_path):
    import zipfile

    dr = Client(ui_server.url, ui_server.token)
    ds = dr.create_dataset("docs")
    v1 = dr.create_version(ds["id"], "v1")
    dr.create_label(v1["id"], "Text")
    assets = dr.upload_assets(v1["id"], [(f"p{i}.png", rendered_page(seed=i)[0]) for i in range(2)])
    dr.add_annotations(assets[0]["id"], [{"kind": "rectangle", "label": "Text",
                                          "bbox": [10, 10, 100, 50]}])  # fmt: skip
    v2 = dr.create_version(ds["id"], "v2")
    sign_in(page, ui_server)
    page.goto(f"{ui_server.url}/versions/{v1['id']}/labels")
    with page.expect_download() as download:
        page.locator("#export-links").get_by_role("link", name="COCO").click()
    archive = tmp_path / "export.zip"
    download.value.save_as(archive)
    with zipfile.ZipFile(archive) as zf:
        assert any(n.endswith(".json") for n in zf.namelist())
        assert sum(n.endswith(".png") for n in zf.namelist()) == 2

    page.goto(f"{ui_server.url}/versions/{v2['id']}/labels")
    page.select_option("#import-format", "coco")
    page.set_input_files("#import-file", str(archive))
    page.click("#import-form button[type=submit]")
    expect(page.locator("#import-report")).to_contain_text("2 images added")
    expect(page.locator("#import-report")).to_contain_text("1 shapes added")
    expect(page.locator("#labels tr[data-label='Text']")).to_be_visible()
    shots(page, "import-report")
    page.set_input_files("#import-file", {"name": "bad.zip", "mimeType": "application/zip",
                                          "buffer": b"not a zip"})  # fmt: skip
    page.click("#import-form button[type=submit]")
    expect(page.locator("#import-error")).to_be_visible()
    dr.close()


def test_usage_shows_running_time_by_processing_and_user(page, ui_server):
    from tests.engine.conftest import SLEEP_SCHEMA, SLEEPER

    dr = Client(ui_server.url, ui_server.token)
    v = dr.create_version(dr.create_dataset("d")["id"], "v")
    dr.create_processing(name="sleeper", type="custom", parameters_schema=SLEEP_SCHEMA,
                         source={"kind": "inline", "code": SLEEPER})  # fmt: skip
    dr.create_processing(name="broken", type="custom", source={"kind": "inline", "code": BROKEN})
    slept = dr.launch_job("sleeper", v["id"], parameters={"seconds": 1.5})
    failed = dr.launch_job("broken", v["id"])
    for job in (slept, failed):
        wait_for(
            lambda job=job: dr.get_job(job["id"]), lambda j: j["status"] in ("succeeded", "failed")
        )
    runs = [dr.get_job(j["id"])["runs"][0] for j in (slept, failed)]
    total = sum(r["duration_s"] for r in runs)
    sign_in(page, ui_server)
    page.goto(f"{ui_server.url}/usage")
    rows = page.locator("#usage-processings tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first.locator("td").first).to_have_text("sleeper")  # the heaviest first
    sleeper_time = float(rows.first.locator("td").nth(1).inner_text().split()[0])
    assert abs(sleeper_time - runs[0]["duration_s"]) < 0.15
    expect(rows.nth(1).locator("td").nth(4)).to_have_text("1")  # broken: one failed run
    expect(page.locator("#usage-users tbody tr")).to_have_count(1)
    expect(page.locator("#usage-users tbody tr td").first).to_have_text("admin")
    expect(page.locator("#usage-total")).to_contain_text(f"{total:.1f} s")
    expect(page.locator("#usage-total")).to_contain_text("in 2 runs")
    page.select_option("#usage-days", "1")
    page.click("form.filters button")
    expect(page).to_have_url(re.compile(r"/usage\?days=1$"))
    expect(page.locator("#usage-processings tbody tr")).to_have_count(2)
    shots(page, "usage")
    dr.close()


def shots(page, name: str) -> None:
    """The page at both sizes, saved, and never wider than the window."""
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        shot(page, f"{name}-{size}")
        assert fits_the_window(page), f"{name} is wider than the window at {size}"
    page.set_viewport_size(SIZES["wide"])


def test_a_model_version_is_uploaded_with_its_labels_shown_before_saving(
    page, ui_server, tmp_path, console_errors
):
    from tests.api.test_tf_models import LABEL_MAP
    from tests.engine.test_tf_preannotation import PEDESTRIAN

    sign_in(page, ui_server)
    page.goto(f"{ui_server.url}/models")
    page.fill("#new-model-name", "pedestrians")
    page.click("#new-model button[type=submit]")
    expect(page).to_have_url(re.compile(r"/models/\d+/upload\?notice=model-created$"))
    expect(page.locator("#version-name")).to_have_value("v1")

    # Not weights at all: the API's refusal, on the form, nothing saved.
    (tmp_path / "notes.onnx").write_bytes(b"not a model")
    page.set_input_files("#weights-file", str(tmp_path / "notes.onnx"))
    page.click("#read-weights")
    expect(page.locator("#upload-error")).to_contain_text("not an ONNX model")

    # A TF frozen graph and its label map: what was read, before saving.
    (tmp_path / "label_map.pbtxt").write_bytes(LABEL_MAP)
    page.set_input_files("#weights-file", str(model_path(*PEDESTRIAN)))
    page.set_input_files("#label-map", str(tmp_path / "label_map.pbtxt"))
    page.click("#read-weights")
    expect(page.locator("#read-format")).to_have_text("tf-graph")
    expect(page.locator("#read-size")).to_have_text("300\u00d7300")
    expect(page.locator("#read-labels li")).to_have_text(["person", "class_2", "bicycle"])
    shots(page, "model-upload-read")
    with Client(ui_server.url, ui_server.token) as dr:
        assert dr.list_model_versions(1) == []  # nothing saved yet
    page.fill("#labels-confirmed", "person\ncar\nbicycle")
    page.click("#save-version-button")
    expect(page).to_have_url(re.compile(r"/model-versions/\d+\?notice=model-version-saved$"))
    expect(page.locator("main")).to_contain_text("3 labels: person, car, bicycle")

    # An ONNX export names its classes itself; a forged save is refused.
    page.goto(f"{ui_server.url}/models/1/upload")
    expect(page.locator("#version-name")).to_have_value("v2")
    page.set_input_files("#weights-file", str(model_path(*DOCLAYNET)))
    page.click("#read-weights")
    expect(page.locator("#read-family")).to_have_text("yolov8")
    expect(page.locator("#read-labels li")).to_have_count(11)
    expect(page.locator("#read-labels li").first).to_have_text("Caption")
    sha = page.locator("input[name=weights]").input_value()
    csrf = page.locator("#save-version input[name=csrf_token]").input_value()
    forged = page.request.post(f"{ui_server.url}/models/1/versions", form={
        "csrf_token": csrf, "weights": sha, "signature": "0" * 64, "name": "forged"})  # fmt: skip
    assert forged.status == 403
    console_errors.clear()
    page.click("#save-version-button")
    expect(page.locator("h1")).to_have_text("pedestrians / v2")
    shots(page, "models")
    page.goto(f"{ui_server.url}/models")
    expect(page.locator("table").last).to_contain_text("tf-graph")
    shots(page, "models-list")


def test_preview_on_a_few_assets_shows_boxes_and_images_without_touching_the_version(
    page, ui_server
):
    dr = Client(ui_server.url, ui_server.token)
    ds = dr.create_dataset("papers")
    v = dr.create_version(ds["id"], "v1")
    dr.create_label(v["id"], "Text")
    dr.upload_assets(v["id"], [(f"p{i}.png", rendered_page(seed=i)[0]) for i in range(3)])
    dr.upload_model_version(dr.create_model("doclaynet")["id"], model_path(*DOCLAYNET))
    sign_in(page, ui_server)
    page.goto(f"{ui_server.url}/versions/{v['id']}")
    page.click("#process")
    modal = page.locator("dialog#modal")
    modal.locator("#processing").select_option("yolo-preannotation")
    expect(modal.locator("#model_version")).to_have_value(re.compile(r"\d+"))
    modal.locator("#preview-assets").fill("0")
    modal.locator("#preview-button").click()
    expect(modal.locator("#preview-error")).to_contain_text("1 to 16 assets")
    modal.locator("#preview-assets").fill("2")
    modal.locator("#preview-button").click()
    expect(modal.locator("#preview-done")).to_contain_text("on 2 assets", timeout=90_000)
    expect(modal.locator("#preview .tile")).to_have_count(2)
    assert modal.locator("#preview rect.box").count() >= 2  # a paragraph box on each page
    modal.locator("#preview-done").scroll_into_view_if_needed()
    shots(page, "process-preview")
    # Nothing written to v1, no version added to the dataset, the version still launchable.
    assert all(not dr.list_annotations(a["id"]) for a in dr.list_assets(v["id"])["items"])
    assert [x["name"] for x in dr.list_versions(ds["id"])] == ["v1"]

    # A processing that makes a version previews the images it would make.
    modal.locator("#processing").select_option("data-augmentation")
    expect(modal.locator("#launch input[name=processing]")).to_have_value("data-augmentation")
    expect(modal.locator("#preview")).to_be_empty()
    modal.locator("#preview-assets").fill("1")
    modal.locator("#preview-button").click()
    expect(modal.locator("#preview-done")).to_contain_text("the version it would make",
                                                          timeout=90_000)  # fmt: skip
    assert modal.locator("#preview .tile").count() >= 1
    assert [x["name"] for x in dr.list_versions(ds["id"])] == ["v1"]
    modal.locator("#launch-button").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+\?notice=launched$"))
    page.goto(f"{ui_server.url}/datasets")  # off the live page before the server stops
    dr.close()


def test_a_deployment_is_served_watched_reviewed_and_measured_in_the_browser(page, ui_server):
    """Deploy from the model version's page; the page's figures follow predictions without a
    reload; review a sampled prediction and send it to a version; launch deployment-metrics
    from the page; stop it. Every state at both sizes."""
    dr = Client(ui_server.url, ui_server.token)
    mv = dr.upload_model_version(dr.create_model("doclaynet")["id"], model_path(*DOCLAYNET),
                                 name="yolov8n")  # fmt: skip
    target = dr.create_version(dr.create_dataset("served")["id"], "reviewed")
    sign_in(page, ui_server)
    page.goto(f"{ui_server.url}/model-versions/{mv['id']}")
    page.fill("#deploy-form input[name=name]", "pages")
    page.fill("#deploy-form input[name=sampling_rate]", "1")
    shots(page, "model-version-deploy")
    page.click("#deploy")
    expect(page).to_have_url(re.compile(r"/deployments/\d+\?notice=deployed$"))
    expect(page.locator("#deployment-status")).to_have_text("serving", timeout=60_000)
    expect(page.locator("#requests")).to_have_text("0")
    answers = [dr.predict("pages", rendered_page(seed=i)[0]) for i in range(2)]
    expect(page.locator("#requests")).to_have_text("2")  # live: no reload
    expect(page.locator("#per-label")).to_contain_text("Text")
    expect(page.locator("#replicas")).to_contain_text("ready")
    expect(page.locator("#recent")).to_contain_text(str(answers[1]["id"]))
    shots(page, "deployment")

    page.click("#review")
    tile = page.locator(f"[data-prediction='{answers[0]['id']}']")
    expect(tile.locator("rect.box").first).to_be_attached()
    page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    shots(page, "deployment-review")
    tile.locator("input[type=checkbox]").check()
    page.click("#accept")
    expect(page).to_have_url(re.compile(r"notice=predictions-reviewed"))
    page.select_option("select[name=status]", "accepted")
    page.click("form.filters button")
    page.locator(f"[data-prediction='{answers[0]['id']}'] input[type=checkbox]").check()
    page.select_option("select[name=version_id]", label="served / reviewed")
    page.click("#send")
    expect(page).to_have_url(re.compile(r"/assets/\d+\?notice=predictions-sent$"))
    [asset] = dr.list_assets(target["id"])["items"]
    assert asset["metadata"]["prediction_id"] == answers[0]["id"]
    assert dr.list_annotations(asset["id"])[0]["author_kind"] == "user"

    page.goto(f"{ui_server.url}/deployments/{answers[0]['deployment_id']}")
    page.select_option("#launch-form select[name=processing]", "deployment-metrics")
    page.click("#launch-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/jobs/\d+\?notice=launched$"))
    expect(page.locator("#input-deployment")).to_have_text("deployment pages")
    job_id = int(page.url.rsplit("/", 1)[1].split("?")[0])
    wait_for(lambda: dr.get_job(job_id), lambda j: j["status"] in ("succeeded", "failed"), 60)
    assert dr.get_job(job_id)["status"] == "succeeded"
    expect(page.locator("#log")).not_to_have_attribute("data-live", "yes")  # its reload is done
    page.goto(f"{ui_server.url}/deployments/{answers[0]['deployment_id']}")
    expect(page.locator("#metrics")).to_contain_text("latency_p50_ms")
    expect(page.locator("#deployment-jobs")).to_contain_text("deployment-metrics")
    page.click("#stop")
    expect(page.locator("#deployment-status")).to_have_text("stopped")
    expect(page.locator("#start")).to_be_visible()
    shots(page, "deployment-stopped")
    page.goto(f"{ui_server.url}/deployments")
    expect(page.locator("#deployments")).to_contain_text("pages")
    shots(page, "deployments")
    dr.close()
