"""Built-ins are discovered with a hash of the code they run, shared modules included."""

from __future__ import annotations

from pathlib import Path

import pytest

from darkroom.domain.processings import RevisionSpec, check_kinds
from darkroom.processings import discover


def hashes() -> dict[str, str]:
    return {spec.name: source.code_sha256 for spec, source in discover()}


def test_a_change_to_a_shared_module_is_a_new_revision_of_its_users(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = hashes()
    assert {"yolo-preannotation", "tf-preannotation", "model-evaluation"} <= set(before)
    real = Path.read_bytes

    def edited(path: Path) -> bytes:
        data = real(path)
        return data + b"\n# edited\n" if path.name == "detection.py" else data

    monkeypatch.setattr(Path, "read_bytes", edited)
    after = hashes()
    assert after["yolo-preannotation"] != before["yolo-preannotation"]
    assert after["tf-preannotation"] != before["tf-preannotation"]
    assert hashes() == after  # stable


def test_every_builtin_spec_is_valid() -> None:
    """What `register_builtin` no longer checks at each start: a built-in's schema, resources,
    timeout and kinds."""
    for spec, source in discover():
        check_kinds(spec.type, spec.target)
        RevisionSpec(source, spec.parameters_schema, spec.timeout_s, spec.resources).checked(
            allow_builtin=True
        )
