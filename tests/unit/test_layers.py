"""The package layers, as imports say (findings E): the REST API and the pages are siblings over
what they share (`darkroom.http`), the domain knows nothing of HTTP, and `darkroom.server`
alone wires them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import darkroom

ROOT = Path(darkroom.__file__).parent


def imports_of(package: str) -> dict[str, set[str]]:
    """Every module each file of `package` imports, function-level imports too."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("api", ("darkroom.web", "darkroom.server")),
        ("web", ("darkroom.api", "darkroom.server")),
        ("http", ("darkroom.api", "darkroom.web", "darkroom.server")),
        ("domain", ("darkroom.api", "darkroom.web", "darkroom.http", "darkroom.server",
                    "fastapi", "starlette")),
        # formats read and write files of other tools: plain values in, plain values out
        ("formats", ("darkroom.domain", "darkroom.db", "sqlalchemy", "darkroom.http")),
        # a bundle is checked by the CLI too, which loads no database code
        ("bundles", ("darkroom.domain.processings", "darkroom.domain.datasets", "darkroom.db",
                     "sqlalchemy")),
    ],
)  # fmt: skip
def test_a_layer_does_not_import_those_beside_or_above_it(package: str, forbidden: tuple[str, ...]):
    crossing = {
        file: sorted(n for n in names if n.startswith(forbidden))
        for file, names in imports_of(package).items()
        if any(n.startswith(forbidden) for n in names)
    }
    assert crossing == {}


def test_the_leaf_modules_import_nothing_of_darkroom_but_its_errors():
    """Plain values, text checks and defaults: everything imports them, so they import nothing
    that could import back (the cycles hidden by function-level imports before)."""
    for name in ("values.py", "text.py", "defaults.py", "errors.py", "sources.py"):
        path = ROOT / name
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
        ours = {n for n in imported if n.startswith("darkroom")}
        assert ours <= {"darkroom.errors", "darkroom.values"}, (name, ours)
        assert name == "sources.py" or "darkroom.values" not in ours, name


def test_the_tensorflow_modules_do_not_import_each_other_both_ways():
    found = imports_of("inference")
    graph, saved = found["inference/tf_graph.py"], found["inference/tf_saved_model.py"]
    assert "darkroom.inference.tf_saved_model" not in graph
    assert "darkroom.inference.tf_convert" not in graph | saved
