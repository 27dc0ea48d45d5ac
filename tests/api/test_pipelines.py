"""Pipeline definitions through the API: checked whole at create, the bad step and field named;
revisions; organizations kept apart."""

from __future__ import annotations

import pytest

PIPELINES = "/api/v1/pipelines"


def _create(api, steps, name="grow"):
    return api.post(PIPELINES, json={"name": name, "steps": steps})


@pytest.mark.parametrize(
    ("steps", "code", "loc", "words"),
    [
        ([{"name": "a", "processing": "smart-version"}, {"name": "b", "processing": "nope"}],
         "unknown_processing", ["steps", 1, "processing"], "step 'b': no processing 'nope'"),
        ([{"name": "a", "processing": "smart-version", "input": "b"},
          {"name": "b", "processing": "smart-version", "input": "a"}],
         "pipeline_cycle", ["steps", 0, "input"], "cycle"),
        ([{"name": "a", "processing": "smart-version", "parameters": {"no_such": 1}}],
         None, ["steps", 0, "parameters"], "step 'a'"),
        ([{"name": "label", "processing": "yolo-preannotation"}],
         "model_required", ["steps", 0, "model_version_id"], "needs a model version"),
        ([{"name": "a", "processing": "smart-version", "input": "elsewhere"}],
         None, ["steps", 0, "input"], "'elsewhere' is neither"),
        ([{"name": "a", "processing": "smart-version"},
          {"name": "a", "processing": "smart-version"}],
         None, ["steps", 1, "name"], "taken"),
        ([{"name": "m", "processing": "deployment-metrics"}],
         None, ["steps", 0, "processing"], "pipeline steps run on dataset versions"),
        ([{"name": "a", "processing": "smart-version", "model": 3}],
         None, ["steps", 0, "model"], "unknown fields"),
        ([], None, ["steps"], "a pipeline needs a list of steps"),
    ],
)  # fmt: skip
def test_a_bad_definition_is_refused_naming_the_step_and_field(api, steps, code, loc, words):
    r = _create(api, steps)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["details"]["loc"][: len(loc)] == loc, error
    assert words in error["message"], error
    if code:
        assert error["code"] == code
    assert api.get(PIPELINES).json()["items"] == []  # nothing half-made


def test_revisions_and_names(api, other_org_api):
    steps = [{"name": "dedup", "processing": "smart-version"},
             {"name": "grow", "processing": "data-augmentation", "input": "dedup"}]  # fmt: skip
    r = _create(api, steps)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["revision"]["number"] == 1
    assert made["revision"]["steps"][1]["input"] == "dedup"
    assert made["revision"]["steps"][0]["parameters"]  # resolved with the schema's defaults
    assert _create(api, steps).json()["error"]["code"] == "name_taken"
    same = api.post(f"{PIPELINES}/grow/revisions", json={"steps": steps}).json()
    assert same["number"] == 1  # nothing changed: no new revision
    changed = [steps[0]]
    assert api.post(f"{PIPELINES}/grow/revisions", json={"steps": changed}).json()["number"] == 2
    assert [r["number"] for r in api.get(f"{PIPELINES}/grow/revisions").json()] == [1, 2]
    assert len(api.get(f"{PIPELINES}/grow").json()["revision"]["steps"]) == 1
    assert other_org_api.get(f"{PIPELINES}/{made['id']}").status_code == 404
    assert other_org_api.get(PIPELINES).json()["items"] == []


def test_launch_needs_a_version_of_ones_own(api, other_org_api, version):
    _create(api, [{"name": "dedup", "processing": "smart-version"}])
    other = other_org_api.post(f"{PIPELINES}/grow/launch", json={"input_version_id": version["id"]})
    assert other.status_code == 404
    run = api.post(f"{PIPELINES}/grow/launch", json={"input_version_id": version["id"]}).json()
    assert run["status"] == "running"
    [step] = run["steps"]
    assert step["status"] == "pending"
    assert api.get(f"/api/v1/jobs/{step['job_id']}").json()["target_version_id"] == version["id"]
    assert other_org_api.get(f"/api/v1/pipeline-runs/{run['id']}").status_code == 404
    busy = api.post(f"/api/v1/pipeline-runs/{run['id']}/rerun")
    assert busy.status_code == 409
    cancelled = api.post(f"/api/v1/pipeline-runs/{run['id']}/cancel").json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["steps"][0]["status"] == "cancelled"


def test_the_readme_example_file_is_a_valid_pipeline(api):
    from pathlib import Path

    from darkroom import safe_yaml
    from tests.api.test_deployments import _model_version

    example = Path(__file__).resolve().parents[2] / "examples" / "pipeline.yaml"
    definition = safe_yaml.load(example.read_bytes())
    mv = _model_version(api)
    for step in definition["steps"]:
        if "model_version_id" in step:
            step["model_version_id"] = mv["id"]
    r = _create(api, definition["steps"], definition["name"])
    assert r.status_code == 201, r.text
    assert [s["name"] for s in r.json()["revision"]["steps"]] == ["dedup", "augment", "label",
                                                                 "evaluate"]  # fmt: skip


UNICODE_DIGIT_ROUTES = ["/api/v1/pipelines/%C2%B2", "/api/v1/deployments/%C2%B2",
                        "/api/v1/processings/%C2%B2", "/api/v1/pipelines/%C2%B2/runs"]  # fmt: skip


@pytest.mark.parametrize("route", UNICODE_DIGIT_ROUTES)
def test_an_id_or_name_of_unicode_digits_is_a_name_not_a_crash(api, route):
    """'²' is a digit to str.isdigit() and not to int(): found by schemathesis as a 500."""
    assert api.get(route).status_code == 404
