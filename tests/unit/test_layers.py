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
    ],
)  # fmt: skip
def test_a_layer_does_not_import_those_beside_or_above_it(package: str, forbidden: tuple[str, ...]):
    crossing = {
        file: sorted(n for n in names if n.startswith(forbidden))
        for file, names in imports_of(package).items()
        if any(n.startswith(forbidden) for n in names)
    }
    assert crossing == {}
