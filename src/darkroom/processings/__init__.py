"""Built-in processings. Each module here defines `SPEC` (a `BuiltinSpec`) and `run(ctx)`.

They are written against `darkroom.runtime` exactly like a user's processing; the only thing
special about them is that `darkroom serve` registers them as public processings at start.
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BuiltinSpec", "discover"]


@dataclass(frozen=True, slots=True)
class BuiltinSpec:
    name: str
    type: str
    description: str
    parameters_schema: dict[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    needs_model: bool = False
    timeout_s: int = 2 * 3600
    resources: dict[str, Any] = field(default_factory=dict)


def discover() -> list[tuple[BuiltinSpec, dict[str, Any]]]:
    """Every built-in with its source reference; the code's hash makes a changed module a new
    revision."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        spec = getattr(module, "SPEC", None)
        if not isinstance(spec, BuiltinSpec):
            continue
        code = Path(module.__file__ or "").read_bytes()
        source = {
            "kind": "builtin",
            "module": module.__name__,
            "code_sha256": hashlib.sha256(code).hexdigest(),
        }
        found.append((spec, source))
    return found
