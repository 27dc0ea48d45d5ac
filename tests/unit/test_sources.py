"""A revision's source, typed where it enters (findings E): the JSON object it was posted as
comes back unchanged, a mistyped field is named, and what older releases stored still loads."""

from __future__ import annotations

import pytest

from darkroom.errors import InvalidInput
from darkroom.sources import (
    BuiltinSource,
    BundleSource,
    ImageSource,
    InlineSource,
    parse_source,
    source_doc,
)

DOCS = [
    {"kind": "inline", "code": "def run(ctx): pass"},
    {"kind": "inline", "code": "def go(ctx): pass", "entrypoint": "go"},
    {"kind": "builtin", "module": "darkroom.processings.dataset_stats", "code_sha256": "ab" * 32},
    {"kind": "bundle", "sha256": "cd" * 32, "entrypoint": "main:run", "requirements": ["a==1"],
     "files": 3, "size": 900},
    {"kind": "image", "image": "ghcr.io/acme/tool:1", "command": ["python", "x.py"]},
    {"kind": "image", "image": "ghcr.io/acme/tool:1"},
]  # fmt: skip


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d["kind"])
def test_a_source_round_trips_to_the_object_it_was_parsed_from(doc):
    assert source_doc(parse_source(doc)) == doc


def test_each_kind_parses_to_its_type():
    types = [type(parse_source(d)) for d in DOCS]
    assert types == [InlineSource, InlineSource, BuiltinSource, BundleSource, ImageSource,
                     ImageSource]  # fmt: skip
    assert parse_source(DOCS[0]).function == "run"
    assert parse_source(DOCS[1]).function == "go"


@pytest.mark.parametrize(
    ("doc", "loc"),
    [
        ([], ["source"]),
        ({"kind": "shell", "code": "ls"}, ["source", "kind"]),
        ({"kind": "inline"}, ["source", "code"]),
        ({"kind": "inline", "code": "  "}, ["source", "code"]),
        ({"kind": "inline", "code": "x", "entrypoint": "not a name"}, ["source", "entrypoint"]),
        ({"kind": "inline", "code": "x", "requirements": ["a"]}, ["source", "requirements"]),
        ({"kind": "image", "image": "Not An Image"}, ["source", "image"]),
        ({"kind": "image", "image": "a/b:1", "command": "run"}, ["source", "command"]),
        ({"kind": "bundle", "sha256": "x", "entrypoint": "m:f", "files": -1}, ["source", "files"]),
    ],
)
def test_a_bad_source_names_its_field(doc, loc):
    with pytest.raises(InvalidInput) as caught:
        parse_source(doc)
    assert caught.value.code == "invalid_source"
    assert caught.value.details["loc"] == loc


def test_what_was_stored_with_keys_it_does_not_know_still_loads():
    stored = {"kind": "inline", "code": "def run(ctx): pass", "note": "from an older release"}
    assert parse_source(stored, strict=False) == InlineSource("def run(ctx): pass")
