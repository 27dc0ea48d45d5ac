"""`darkroom processing init`: a working example bundle to start from, with its own test.

The example is a pre-annotation without a model: it boxes the content of each image (the
region darker than the paper around it) with one of the version's labels. Its logic is a pure
function, tested without a server; `run(ctx)` wires it to the runtime SDK.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["scaffold"]

TEMPLATES = Path(__file__).parent / "scaffold"
FILES = {
    "darkroom.yaml.tmpl": "darkroom.yaml",
    "main.py.tmpl": "main.py",
    "requirements.txt.tmpl": "requirements.txt",
    "test_main.py.tmpl": "tests/test_main.py",
    "README.md.tmpl": "README.md",
}


def scaffold(name: str, type_: str, parent: Path) -> Path:
    """Writes the example bundle into `parent/name` (which must not exist yet)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", name):
        raise ValueError(f"{name!r} is not a processing name (letters, digits, '-', '_', '.')")
    target = parent / name
    if target.exists():
        raise FileExistsError(f"{target} already exists")
    for template, relative in FILES.items():
        text = (TEMPLATES / template).read_text()
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("{{name}}", name).replace("{{type}}", type_))
    return target
