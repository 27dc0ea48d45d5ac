"""`data-augmentation`'s pipeline is checked at launch: an unknown transform or argument is a
422 naming it, before any run exists."""

from __future__ import annotations

import pytest


def _launch(api, version, parameters):
    return api.post(
        "/api/v1/jobs",
        json={"processing": "data-augmentation", "target_version_id": version["id"],
              "parameters": parameters},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("pipeline", "says"),
    [
        ([{"transform": "HorizontalFlipp"}],
         "parameters.pipeline.0.transform: 'HorizontalFlipp' is not one of the"),
        ([{"transform": "HorizontalFlip", "p": 1}, {"transform": "Affine", "rotat": 5}],
         "parameters.pipeline.1: 'rotat' is not one of the 16 allowed values; did you mean "
         "'rotate'?"),
        ([{"p": 1}], "parameters.pipeline.0: 'transform' is a required property"),
    ],
)  # fmt: skip
def test_unknown_transform_or_argument_is_422_at_launch(api, version, pipeline, says):
    r = _launch(api, version, {"pipeline": pipeline})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["message"].startswith(says), r.json()["error"]["message"]
    assert api.get("/api/v1/jobs").json()["items"] == []


def test_a_misspelt_transform_gets_a_suggestion(api, version):
    r = _launch(api, version, {"pipeline": [{"transform": "HorizontalFlipp"}]})
    assert "did you mean 'HorizontalFlip'?" in r.json()["error"]["message"]


def test_defaults_launch(api, version):
    r = _launch(api, version, {})
    assert r.status_code == 201, r.text
    assert r.json()["parameters"]["preset"] == "light"
    assert r.json()["parameters"]["copies_per_asset"] == 2
