"""The pages over HTTP (no browser): CSRF, escaping, organization checks, bounded queries, and
the forms of Settings -> Labels, the processing editor and the asset view."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, insert

from darkroom.db.engine import session_scope
from darkroom.db.models import Asset
from darkroom.domain import logs
from darkroom.web.auth import COOKIE, csrf_token
from tests.conftest import ADMIN_TOKEN

CODE = "def run(ctx):\n    ctx.log.info('hi')\n"
CSRF = {"csrf_token": csrf_token(ADMIN_TOKEN)}


@pytest.fixture
def web(app) -> Iterator[TestClient]:
    """A signed-in browser-like client: the cookie, no bearer header, no redirects followed."""
    with TestClient(app, cookies={COOKIE: ADMIN_TOKEN}, follow_redirects=False) as client:
        yield client


@pytest.fixture
def job(api, version):
    body = {"name": "mine", "type": "custom", "source": {"kind": "inline", "code": CODE}}
    r = api.post("/api/v1/processings", json=body)
    assert r.status_code == 201, r.text
    r = api.post("/api/v1/jobs", json={"processing": "mine", "target_version_id": version["id"]})
    assert r.status_code == 201, r.text
    return r.json()


class QueryCounter:
    def __init__(self, engine) -> None:
        self.count = 0
        self.engine = engine

    def __enter__(self) -> QueryCounter:
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._count)

    def _count(self, *args: object) -> None:
        # The request's queries only: not the background threads' (the deployments' reconcile
        # reads every second), whose names all start with "darkroom-".
        if not threading.current_thread().name.startswith("darkroom-"):
            self.count += 1


def queries(app, client: TestClient, url: str) -> int:
    with QueryCounter(app.state.engine) as counter:
        r = client.get(url)
    assert r.status_code == 200, r.text
    return counter.count


def test_unsafe_requests_need_the_csrf_token(web, api, version):
    url = f"/versions/{version['id']}/labels"
    r = web.post(url, data={"name": "bird"})
    assert r.status_code == 403
    assert "did not come from a darkroom page" in r.text
    r = web.post(url, data={"name": "bird", "csrf_token": "0" * 64})
    assert r.status_code == 403
    names = [x["name"] for x in api.get(f"/api/v1/versions/{version['id']}/labels").json()["items"]]
    assert "bird" not in names
    assert web.post(url, data={"name": "bird", **CSRF}).status_code == 303
    # htmx sends it as a header
    r = web.post(url, data={"name": "fish"}, headers={"X-CSRF-Token": CSRF["csrf_token"]})
    assert r.status_code == 303
    names = [x["name"] for x in api.get(f"/api/v1/versions/{version['id']}/labels").json()["items"]]
    assert {"bird", "fish"} <= set(names)
    # the token is in every page's forms, and it is this session's
    page = web.get(url).text
    assert f'value="{CSRF["csrf_token"]}"' in page
    assert re.search(r"hx-headers='\{\"X-CSRF-Token\": \"[0-9a-f]{64}\"\}'", page)


def test_sign_in_sets_an_http_only_strict_cookie(anon):
    r = anon.post("/login", data={"token": ADMIN_TOKEN, "next": "//evil.example/"},
                  follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    assert r.headers["location"] == "/datasets"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie


def test_log_lines_and_names_are_escaped(app, web, api, job):
    run_id = job["runs"][0]["id"]
    with session_scope(app.state.sessions) as session:
        logs.append_lines(session, run_id, [
            logs.Line(1, datetime.now(UTC), "stdout", "<script>alert('x')</script>"),
        ])  # fmt: skip
    html = web.get(f"/jobs/{job['id']}").text
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    ds = api.post("/api/v1/datasets", json={"name": "<img src=x onerror=alert(1)>"}).json()
    html = web.get("/datasets").text
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert web.get(f"/datasets/{ds['id']}").status_code == 200


def test_pages_check_the_organization(app, web, other_org_api, version, job):
    ds = other_org_api.post("/api/v1/datasets", json={"name": "theirs"}).json()
    theirs = other_org_api.post(f"/api/v1/datasets/{ds['id']}/versions", json={"name": "v"}).json()
    for url in (f"/datasets/{ds['id']}", f"/versions/{theirs['id']}",
                f"/versions/{theirs['id']}/labels", f"/versions/{theirs['id']}/jobs",
                f"/versions/{theirs['id']}/process"):  # fmt: skip
        r = web.get(url)
        assert r.status_code == 404, url
        assert "<h1>Error 404</h1>" in r.text
    assert "theirs" not in web.get("/datasets").text
    # and the other organization cannot see ours through the pages either
    token = other_org_api.headers["authorization"].split()[1]
    with TestClient(app, cookies={COOKIE: token}, follow_redirects=False) as mallory:
        assert mallory.get(f"/jobs/{job['id']}").status_code == 404
        assert mallory.get(f"/versions/{version['id']}").status_code == 404
        r = mallory.post(f"/ui/jobs/{job['id']}/rerun",
                         data={"csrf_token": csrf_token(token)})  # fmt: skip
        assert r.status_code == 404


def test_signed_out_pages_redirect_to_sign_in(anon):
    r = anon.get("/jobs", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/jobs"


def _bulk_assets(app, version_id: int, n: int, sha: str) -> None:
    rows = [{"version_id": version_id, "blob_sha256": sha, "filename": f"f{i:05}.jpg",
             "mime": "image/jpeg", "width": 64, "height": 48, "meta": {}}
            for i in range(n)]  # fmt: skip
    with session_scope(app.state.sessions) as session:
        session.execute(insert(Asset), rows)


def test_assets_grid_and_jobs_list_make_a_fixed_number_of_queries(app, web, api, version, upload,
                                                                   job):  # fmt: skip
    first = upload(version["id"], "seed.jpg")
    api.post(f"/api/v1/assets/{first['id']}/annotations",
             json={"shapes": [{"kind": "rectangle", "label": "cat", "bbox": [1, 1, 5, 5]}]},
             ).raise_for_status()  # fmt: skip
    grid = f"/versions/{version['id']}"
    few = queries(app, web, grid)
    _bulk_assets(app, version["id"], 1000, first["blob_sha256"])
    many = queries(app, web, grid)
    assert web.get(grid).text.count("data-asset=") == 48
    assert many == few
    more = web.get(f"/versions/{version['id']}/grid?after={first['id']}").text
    assert more.count("data-asset=") == 48
    assert "Load more" in more

    few = queries(app, web, "/jobs")
    launch = {"processing": "mine", "target_version_id": version["id"]}
    for _ in range(999):
        api.post("/api/v1/jobs", json=launch).raise_for_status()
    many = queries(app, web, "/jobs")
    assert many == few
    assert queries(app, web, f"/versions/{version['id']}/jobs") <= few
    html = web.get("/jobs").text
    assert html.count('<tr><td><a href="/jobs/') == 100
    older = re.search(r'href="/jobs\?before=(\d+)', html)
    assert older, "the newest 100 jobs come first, with a link to older ones"
    assert f'href="/jobs/{job["id"] + 999}"' in html  # the newest


def test_labels_settings_add_rename_recolour_delete(web, api, version, upload):
    url = f"/versions/{version['id']}/labels"
    assert web.post(url, data={"name": "bird", "color": "#123456", **CSRF}).status_code == 303
    labels = {
        x["name"]: x for x in api.get(f"/api/v1/versions/{version['id']}/labels").json()["items"]
    }
    assert labels["bird"]["color"] == "#123456"
    bird = labels["bird"]["id"]
    r = web.post(f"/ui/labels/{bird}", data={"name": "Bird", "color": "#abcdef", **CSRF})
    assert r.status_code == 303
    listed = api.get(f"/api/v1/versions/{version['id']}/labels").json()["items"]
    renamed = next(x for x in listed if x["id"] == bird)
    assert (renamed["name"], renamed["color"]) == ("Bird", "#abcdef")
    # Findings B8: the colour picker sat under "Label", the Colour column was empty
    row = re.search(r'<tr data-label="Bird">(.*?)</tr>', web.get(url).text, re.S).group(1)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    assert 'name="name"' in cells[0]
    assert 'type="color"' in cells[1]
    assert 'type="color"' not in cells[0]
    # errors come back as the page with the message, nothing changed
    r = web.post(url, data={"name": "cat", **CSRF})
    assert r.status_code == 200
    assert "already exists" in r.text
    r = web.post(f"/ui/labels/{bird}", data={"name": "Bird", "color": "blue", **CSRF})
    assert r.status_code == 200
    assert 'role="alert"' in r.text
    # a label in use needs force (the page asks first and sends it)
    a = upload(version["id"])
    api.post(f"/api/v1/assets/{a['id']}/annotations",
             json={"shapes": [{"kind": "rectangle", "label": "Bird", "bbox": [1, 1, 5, 5]}]},
             ).raise_for_status()  # fmt: skip
    r = web.post(f"/ui/labels/{bird}/delete", data=CSRF)
    assert r.status_code == 200
    assert "used by 1 shapes" in r.text
    assert 'data-confirm="Delete Bird and its 1 shapes?"' in web.get(url).text
    assert web.post(f"/ui/labels/{bird}/delete", data={"force": "true", **CSRF}).status_code == 303
    names = [x["name"] for x in api.get(f"/api/v1/versions/{version['id']}/labels").json()["items"]]
    assert "Bird" not in names


def test_asset_view_lists_shapes_by_author(app, web, api, version, upload, job):
    a = upload(version["id"], "pic.jpg")
    api.post(f"/api/v1/assets/{a['id']}/annotations",
             json={"shapes": [{"kind": "rectangle", "label": "cat", "bbox": [2, 3, 10, 12]}]},
             ).raise_for_status()  # fmt: skip
    html = web.get(f"/assets/{a['id']}").text
    assert "admin" in html
    assert "(person)" in html
    assert 'data-author="user-' in html
    assert "2, 3, 10, 12" in html
    r = web.get(f"/ui/assets/{a['id']}/image")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/jpeg"
    empty = upload(version["id"], "none.jpg")
    assert "No shape on this image yet." in web.get(f"/assets/{empty['id']}").text


def test_processing_editor_makes_revisions(web, api):
    r = web.post("/processings/new", data={
        "name": "counter", "type": "custom", "description": "counts", "timeout_s": "60",
        "parameters_schema": '{"type": "object", "properties": {"n": {"type": "integer", '
                             '"default": 3}}}',
        "code": CODE, **CSRF})  # fmt: skip
    assert r.status_code == 303, r.text
    url = r.headers["location"]
    page = web.get(url).text
    assert "counts" in page
    assert "<code>3</code>" in page
    # bad JSON and a schema whose default breaks it: errors, no new revision
    r = web.post(url, data={"description": "counts", "timeout_s": "60",
                            "parameters_schema": "{nope", "code": CODE, **CSRF})  # fmt: skip
    assert r.status_code == 200
    assert "not valid JSON" in r.text
    assert "{nope" in r.text
    r = web.post(url, data={"description": "counts", "timeout_s": "60", "code": CODE,
                            "parameters_schema": '{"type": "object", "properties": {"n": '
                                                 '{"type": "integer", "default": "x"}}}',
                            **CSRF})  # fmt: skip
    assert r.status_code == 200
    assert "defaults do not validate" in r.text
    # emptied code: the editor's source is checked as a posted one is
    r = web.post(url, data={"description": "counts", "timeout_s": "60", "code": "  ",
                            "parameters_schema": '{"type": "object", "properties": {}}',
                            **CSRF})  # fmt: skip
    assert r.status_code == 200
    assert "source.code must be a non-empty string" in r.text
    assert len(api.get("/api/v1/processings/counter/revisions").json()["items"]) == 1
    r = web.post(url, data={"description": "counts", "timeout_s": "120", "code": CODE,
                            "parameters_schema": '{"type": "object", "properties": {"n": '
                                                 '{"type": "integer", "default": 5}}}',
                            **CSRF})  # fmt: skip
    assert r.status_code == 303
    revisions = api.get("/api/v1/processings/counter/revisions").json()["items"]
    assert [x["number"] for x in revisions] == [1, 2]
    assert revisions[1]["timeout_s"] == 120
    assert "<code>5</code>" in web.get(url).text
    # a public built-in is shown, not editable
    builtin = web.get("/processings/dataset-stats").text
    assert "not editable here" in builtin
    assert 'id="processing-form"' not in builtin


def test_process_modal_fragment_and_htmx_launch(web, version, job):
    url = f"/versions/{version['id']}/process"
    fragment = web.get(url, headers={"HX-Request": "true"}).text
    assert "<html" not in fragment
    assert 'id="process-flow"' in fragment
    assert "<html" in web.get(url).text
    r = web.post(url, data={"processing": "mine", **CSRF}, headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert re.fullmatch(r"/jobs/\d+\?notice=launched", r.headers["hx-redirect"])


def test_a_tri_state_parameter_is_a_three_way_choice_that_keeps_either(web, api, version):
    """Findings B1: smart-version's `annotated` (null = either) was a checkbox that sent false:
    its defaults made an empty version."""
    url = f"/versions/{version['id']}/process?processing=smart-version"
    html = web.get(url).text
    control = re.search(r'<select id="f-annotated" name="annotated">(.*?)</select>', html, re.S)
    assert control, "annotated is not a three-way choice"
    options = re.findall(r'<option value="(\w*)"( selected)?>([^<]+)</option>', control.group(1))
    assert [(v, label) for v, _, label in options] == [("", "either"), ("true", "yes"),
                                                       ("false", "no")]  # fmt: skip
    assert [v for v, selected, _ in options if selected] == [""]
    for sent, expected in (("", None), ("true", True), ("false", False)):
        r = web.post(f"/versions/{version['id']}/process",
                     data={"processing": "smart-version", "annotated": sent, **CSRF})  # fmt: skip
        assert r.status_code == 303, r.text
        job_id = int(r.headers["location"].split("/jobs/")[1].split("?")[0])
        assert api.get(f"/api/v1/jobs/{job_id}").json()["parameters"]["annotated"] is expected


def test_label_and_tag_filters_are_picked_and_a_split_is_three_numbers(web, api, version, upload):
    """Findings B4: smart-version's label and tag filters and its split were raw JSON to type.
    Now checkboxes of the version's labels and tags, and a number per split."""
    asset = upload(version["id"])
    tagged = api.patch(f"/api/v1/assets/{asset['id']}", json={"tags": ["night", "blurry"]})
    tagged.raise_for_status()
    url = f"/versions/{version['id']}/process"
    html = web.get(f"{url}?processing=smart-version").text

    def boxes(name: str) -> list[str]:
        group = re.search(rf'<span id="f-{name}" class="picker"[^>]*>(.*?)</span>', html, re.S)
        assert group, f"{name} is not a picker"
        return re.findall(rf'<input type="checkbox" name="{name}" value="([^"]+)"', group.group(1))

    assert boxes("labels_any") == boxes("labels_none") == ["cat", "dog"]
    assert boxes("tags_any") == ["blurry", "night"]
    assert re.findall(r'name="(split\.\w+)"', html) == ["split.train", "split.val", "split.test"]
    assert 'name="labels_any" rows' not in html  # no JSON text box left for them
    form = {
        "processing": "smart-version",
        **CSRF,
        "__multi": ["labels_any", "labels_none", "tags_any"],
        "labels_any": ["cat", "dog"],
        "tags_any": "night",
        "split.train": "0.8",
        "split.val": "0.2",
        "split.test": "",
    }
    r = web.post(url, data=form)
    assert r.status_code == 303, r.text
    job_id = int(r.headers["location"].split("/jobs/")[1].split("?")[0])
    parameters = api.get(f"/api/v1/jobs/{job_id}").json()["parameters"]
    assert parameters["labels_any"] == ["cat", "dog"]
    assert parameters["labels_none"] == []
    assert parameters["tags_any"] == ["night"]
    assert parameters["split"] == {"train": 0.8, "val": 0.2}
    # no ratio typed: no split (null), as its default
    r = web.post(url, data={"processing": "smart-version", **CSRF, "split.train": ""})
    job_id = int(r.headers["location"].split("/jobs/")[1].split("?")[0])
    assert api.get(f"/api/v1/jobs/{job_id}").json()["parameters"]["split"] is None
    # a ratio that is not a number, or over 1: said by its field, what was typed kept
    for typed, said in (("lots", "each value must be a number"), ("1.5", "1.5")):
        r = web.post(url, data={"processing": "smart-version", **CSRF, "split.train": typed,
                                "__multi": "labels_any", "labels_any": "dog"})  # fmt: skip
        assert r.status_code == 200
        assert re.search(rf'data-field="split">[^<]*{re.escape(said)}', r.text), r.text
        assert f'name="split.train" value="{typed}"' in r.text
        kept = re.search(r'<span id="f-labels_any".*?</span>', r.text, re.S).group(0)
        assert re.findall(r'value="(\w+)" checked', kept) == ["dog"]


def test_processing_page_shows_bundle_and_image_revisions(web, api):
    from tests.api.test_bundles_api import push

    push(api)
    push(api, {"darkroom.yaml": b"name: boxer\ntype: custom\nentrypoint: main:run\n",
               "main.py": b"def run(ctx):\n    pass\n", "requirements.txt": b"six==1.16.0\n"},
         dev=True)  # fmt: skip
    html = web.get("/processings/boxer").text
    assert "<code>main:run</code>" in html
    assert "<code>six==1.16.0</code>" in html
    assert "development" in html
    assert "push a new bundle to change it" in html
    listed = web.get("/processings").text
    assert re.search(r'href="/processings/\d+">boxer</a>.*?<td>1 <span', listed, re.S)


def test_processing_page_says_when_runs_get_the_network(web, api):
    from tests.api.test_bundles_api import push

    push(api)
    assert "sandboxed, no network but darkroom" in web.get("/processings/boxer").text
    push(api, {"darkroom.yaml": b"name: boxer\ntype: custom\nentrypoint: main:run\n"
               b"network: true\nresources: {memory: 2GiB}\n",
               "main.py": b"def run(ctx):\n    pass\n"})  # fmt: skip
    html = web.get("/processings/boxer").text
    assert "network access" in html
    assert "memory 2GiB" in html


def test_a_failed_job_offers_resume_and_resuming_makes_a_resumed_run(app, web, job):
    from darkroom.db.engine import session_scope
    from darkroom.db.models import RunStatus
    from darkroom.domain import runs

    page = web.get(f"/jobs/{job['id']}").text
    assert 'id="resume"' not in page  # its run is pending
    with session_scope(app.state.sessions) as session:
        [claimed] = runs.claim_runs(session, "w", 1)
        runs.finish_run(session, claimed.run_id, "w", RunStatus.failed, exit_code=1)
    assert 'id="resume"' in web.get(f"/jobs/{job['id']}").text
    r = web.post(f"/ui/jobs/{job['id']}/rerun",
                 data={"csrf_token": csrf_token(ADMIN_TOKEN), "resume": "true"})  # fmt: skip
    assert r.status_code == 303
    bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    new_run = web.get(f"/api/v1/jobs/{job['id']}", headers=bearer).json()["runs"][-1]
    assert new_run["resume"] is True
    assert "resumed" in web.get(r.headers["location"]).text


def test_a_jobs_annotations_are_removed_as_a_whole(app, web, api, anon, version, job, upload):
    """What a pre-annotation wrote can be taken back: with a count, after a question, and
    never people's annotations."""
    from darkroom.db.engine import session_scope
    from darkroom.db.models import RunStatus
    from darkroom.domain import runs
    from tests.api.test_jobs import _claim

    rect = {"kind": "rectangle", "label": "cat", "bbox": [1, 1, 5, 5]}
    api.post(f"/api/v1/versions/{version['id']}/labels", json={"name": "cat"})
    a, b = upload(version["id"], "a.png"), upload(version["id"], "b.png")
    claimed = {c.job_id: c for c in _claim(app)}[job["id"]]
    h = {"Authorization": f"Bearer {claimed.token}"}
    body = {"items": [{"asset_id": a["id"], "shapes": [rect, rect]},
                      {"asset_id": b["id"], "shapes": [rect]}]}  # fmt: skip
    assert anon.post(f"/api/v1/runs/{claimed.run_id}/annotations", json=body,
                     headers=h).status_code == 201  # fmt: skip
    api.post(f"/api/v1/assets/{a['id']}/annotations", json={"shapes": [rect]})  # a person's
    busy = api.delete(f"/api/v1/jobs/{job['id']}/annotations")
    assert (busy.status_code, busy.json()["error"]["code"]) == (409, "job_active")
    with session_scope(app.state.sessions) as session:
        runs.finish_run(session, claimed.run_id, "test-worker", RunStatus.succeeded, exit_code=0)

    page = web.get(f"/jobs/{job['id']}").text
    assert "wrote <strong>3 shapes</strong> on its version" in page
    assert 'data-confirm="Remove the 3 shapes this job wrote on' in page
    r = web.post(f"/ui/jobs/{job['id']}/remove-annotations", data=CSRF)
    assert r.status_code == 303
    assert api.get(f"/api/v1/versions/{version['id']}/stats").json()["shapes"] == 1
    assert 'id="job-annotations"' not in web.get(f"/jobs/{job['id']}").text
    again = api.delete(f"/api/v1/jobs/{job['id']}/annotations")
    assert again.json() == {"deleted_shapes": 0}
    [kept] = api.get(f"/api/v1/assets/{a['id']}/annotations").json()["items"]
    assert kept["author_kind"] == "user"


def test_a_shape_is_deleted_from_the_asset_page_and_the_api(web, api, other_org_api, version,
                                                           upload):  # fmt: skip
    api.post(f"/api/v1/versions/{version['id']}/labels", json={"name": "cat"})
    asset = upload(version["id"], "a.png")
    rect = {"kind": "rectangle", "label": "cat", "bbox": [1, 1, 5, 5]}
    api.post(f"/api/v1/assets/{asset['id']}/annotations", json={"shapes": [rect, rect]})
    [annotation] = api.get(f"/api/v1/assets/{asset['id']}/annotations").json()["items"]
    first, second = (s["id"] for s in annotation["shapes"])
    page = web.get(f"/assets/{asset['id']}").text
    assert f'action="/ui/shapes/{first}/delete" data-confirm="Delete this cat rectangle?"' in page
    assert other_org_api.delete(f"/api/v1/shapes/{first}").status_code == 404
    r = web.post(f"/ui/shapes/{first}/delete", data=CSRF)
    assert (r.status_code, r.headers["location"]) == (
        303,
        f"/assets/{asset['id']}?notice=shape-deleted#shapes",
    )
    assert api.get(f"/api/v1/versions/{version['id']}/stats").json()["shapes"] == 1
    assert api.delete(f"/api/v1/shapes/{second}").status_code == 204
    assert api.get(f"/api/v1/assets/{asset['id']}/annotations").json()["items"] == []
    assert api.delete(f"/api/v1/shapes/{second}").status_code == 404


def test_the_sign_in_hint_names_this_servers_admin_token(anon, tmp_path):
    """The finding: the hint named ~/.darkroom/admin-token even when the home was elsewhere."""
    assert "the server&#39;s DARKROOM_ADMIN_TOKEN" in anon.get("/login").text
    from darkroom.config import Settings
    from darkroom.server import create_app

    home = tmp_path / "elsewhere"
    other = create_app(Settings(home=home, database_url=f"sqlite:///{tmp_path / 'o.db'}"))
    try:
        with TestClient(other) as client:
            hint = client.get("/login").text
        assert f"<code>{home / 'admin-token'}</code>" in hint
        assert (home / "admin-token").exists()
    finally:
        other.state.engine.dispose()


def test_the_current_section_is_marked_in_the_navigation(web, version, job):
    def current(path: str) -> list[str]:
        text = web.get(path).text
        return [name for name in ("Datasets", "Jobs", "Processings", "Models")
                if f'aria-current="page">{name}</a>' in text]  # fmt: skip

    assert current(f"/versions/{version['id']}") == ["Datasets"]
    assert current(f"/jobs/{job['id']}") == ["Jobs"]
    assert current("/models") == ["Models"]
    assert current("/processings") == ["Processings"]


def test_cancel_asks_first(web, job):
    """The finding: Cancel stopped a run without a question."""
    page = web.get(f"/jobs/{job['id']}").text
    run_id = job["runs"][0]["id"]
    assert (f'action="/ui/runs/{run_id}/cancel" data-confirm="Cancel run {run_id}? Its process '
            "is stopped; what it wrote stays.\"") in page  # fmt: skip


def test_the_pages_upload_checks_each_image_and_needs_the_csrf_token(web, api, version):
    from tests.helpers import image_bytes

    url = f"/ui/versions/{version['id']}/assets"
    files = {"file": ("a.jpg", image_bytes(), "image/jpeg")}
    assert web.post(url, files=files).status_code == 403  # no token: another site's form
    r = web.post(url, files=files, headers={"X-CSRF-Token": CSRF["csrf_token"]})
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == "a.jpg"
    bad = web.post(url, files={"file": ("b.jpg", b"nope", "image/jpeg")},
                   headers={"X-CSRF-Token": CSRF["csrf_token"]})  # fmt: skip
    assert bad.status_code == 415
    assert "not an image" in bad.json()["error"]
    listed = api.get(f"/api/v1/versions/{version['id']}/assets").json()["items"]
    assert [a["filename"] for a in listed] == ["a.jpg"]


def test_pages_name_versions_and_count_their_assets(web, api, version, upload):
    """Findings B8: "Parent: version 2" said an id; the dataset page had no asset count."""
    from tests.helpers import image_bytes

    upload(version["id"], "a.jpg", image_bytes(seed=1))
    upload(version["id"], "b.jpg", image_bytes(seed=2))
    child = api.post(f"/api/v1/datasets/{version['dataset_id']}/versions",
                     json={"name": "copy", "parent_version_id": version["id"]}).json()  # fmt: skip
    html = web.get(f"/versions/{child['id']}").text
    parent = re.search(r'id="parent-version">([^<]+)<', html)
    assert parent, "the parent is not named"
    assert parent.group(1) == version["name"]
    dataset = web.get(f"/datasets/{version['dataset_id']}").text
    assert re.findall(r'<td class="asset-count">(\d+)</td>', dataset) == ["2", "2"]
    assert "2 assets · 0 jobs" in dataset  # the lineage graph's nodes too


def test_a_pending_run_says_why_it_waits_and_its_place(web, api, version, job):
    """Findings B7: a pending run said nothing of why it waited or where it stood."""
    launch = {"processing": "mine", "target_version_id": version["id"]}
    later = [api.post("/api/v1/jobs", json=launch).json() for _ in range(2)]  # no scheduler here
    html = web.get(f"/jobs/{later[-1]['id']}").text
    why = re.search(r'<p class="notice" id="pending-why">(.*?)</p>', html, re.S)
    assert why, "a pending run says nothing"
    assert "behind\n  2 runs queued before it (0 running now)" in why.group(1)
    api.post(f"/api/v1/runs/{job['runs'][0]['id']}/cancel").raise_for_status()
    assert 'id="pending-why"' not in web.get(f"/jobs/{job['id']}").text  # ended: nothing to say
    html = web.get(f"/jobs/{later[-1]['id']}").text
    assert "behind\n  1 run queued before it" in html  # one fewer ahead


def test_a_gpu_run_says_no_worker_has_one_then_waits_for_a_free_one(app, web, api, version):
    """A run asking for GPUs that no worker has says so (page, log, API), not that it waits for
    a slot; once a worker with a GPU is seen, it waits for that GPU."""
    from darkroom.domain import workers

    api.post("/api/v1/processings", json={
        "name": "trainer", "type": "custom", "resources": {"gpus": 1},
        "source": {"kind": "inline", "code": "def run(ctx):\n    pass\n"},
    }).raise_for_status()  # fmt: skip
    job = api.post("/api/v1/jobs", json={"processing": "trainer",
                                         "target_version_id": version["id"]}).json()  # fmt: skip
    run_id = job["runs"][0]["id"]
    logged = api.get(f"/api/v1/runs/{run_id}/logs").json()["items"]
    assert "it asks for 1 GPU(s) and none of the 0 worker(s) seen has 1" in logged[0]["text"]

    def why() -> str:
        html = web.get(f"/jobs/{job['id']}").text
        found = re.search(r'<p class="notice" id="pending-why">(.*?)</p>', html, re.S)
        assert found, "a pending run says nothing"
        return " ".join(found.group(1).split())

    assert "it asks for 1 GPU and none of the 0 workers seen has one" in why()
    with session_scope(app.state.sessions) as session:
        workers.advertise(session, workers.WorkerInfo("w1", "gpu-box", "local", 2, gpus=1))
    assert "it waits for 1 free GPU on one of the 1 worker that has them" in why()
    assert [(w["id"], w["gpus"]) for w in api.get("/api/v1/workers").json()["items"]] == [("w1", 1)]


def test_a_finished_run_without_progress_has_no_stray_separator(app, web, job):
    """Findings B7: a run that reported no progress showed "· running time" on its own."""
    from datetime import timedelta

    from darkroom.db.models import Run, utcnow

    with session_scope(app.state.sessions) as session:
        run = session.get(Run, job["runs"][0]["id"])
        run.status, run.started_at = "succeeded", utcnow() - timedelta(seconds=3)
        run.finished_at = utcnow()
    html = web.get(f"/jobs/{job['id']}").text
    line = re.search(r'<p class="muted" id="progress">(.*?)</p>', html, re.S).group(1).strip()
    assert line.startswith("Running time"), line


def test_jobs_are_numbered_per_organization_and_a_preview_takes_no_number(
    web, api, other_org_api, version, upload
):
    """Findings B8: a preview took the next job number (and so did other organizations' jobs):
    pages call a job by its number in its organization, 1, 2, 3…; its id stays its handle."""
    upload(version["id"])
    body = {"name": "mine", "type": "custom", "source": {"kind": "inline", "code": CODE}}
    assert api.post("/api/v1/processings", json=body).status_code == 201
    launch = {"processing": "mine", "target_version_id": version["id"]}
    first = api.post("/api/v1/jobs", json=launch).json()
    r = web.post(f"/versions/{version['id']}/preview",
                 data={"processing": "mine", "preview_assets": "1", **CSRF})  # fmt: skip
    assert r.status_code == 200, r.text
    assert "preview job" in r.text
    preview_id = int(re.search(r'href="/jobs/(\d+)"', r.text).group(1))
    second = api.post("/api/v1/jobs", json=launch).json()
    assert (first["number"], second["number"]) == (1, 2)
    assert api.get(f"/api/v1/jobs/{preview_id}").json()["number"] is None
    assert second["id"] > preview_id > first["id"]
    page = web.get(f"/jobs/{second['id']}").text
    assert "<title>Job #2" in page
    assert "Job #2 ·" in page
    listed = web.get("/jobs").text
    assert f'<a href="/jobs/{second["id"]}">#2</a>' in listed
    assert f'<a href="/jobs/{preview_id}">preview</a>' in listed
    # another organization counts its own
    ds = other_org_api.post("/api/v1/datasets", json={"name": "theirs"}).json()
    v = other_org_api.post(f"/api/v1/datasets/{ds['id']}/versions", json={"name": "v1"}).json()
    assert other_org_api.post("/api/v1/processings", json=body).status_code == 201
    theirs = other_org_api.post(
        "/api/v1/jobs", json={"processing": "mine", "target_version_id": v["id"]}
    ).json()
    assert theirs["number"] == 1
    third = api.post("/api/v1/jobs", json=launch).json()
    assert third["number"] == 3
