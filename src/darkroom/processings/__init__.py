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

from darkroom.defaults import RUN_TIMEOUT_S
from darkroom.sources import BuiltinSource

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
    target: str = "dataset_version"  # or "model_version": it runs on a model
    model_families: tuple[str, ...] = ()  # those it can run; empty: any
    timeout_s: int = RUN_TIMEOUT_S
    resources: dict[str, Any] = field(default_factory=dict)


def discover() -> list[tuple[BuiltinSpec, BuiltinSource]]:
    """Every built-in with its source reference. The code's hash covers the module and the
    package's shared modules (those without a `SPEC`, such as `detection`), so a change to
    either makes a new revision."""
    modules = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        modules.append(importlib.import_module(f"{__name__}.{info.name}"))
    shared = hashlib.sha256()
    for module in modules:
        if not isinstance(getattr(module, "SPEC", None), BuiltinSpec):
            shared.update(Path(module.__file__ or "").read_bytes())
    found = []
    for module in modules:
        spec = getattr(module, "SPEC", None)
        if not isinstance(spec, BuiltinSpec):
            continue
        code = hashlib.sha256(Path(module.__file__ or "").read_bytes())
        code.update(shared.digest())
        found.append((spec, BuiltinSource(module.__name__, code.hexdigest())))
    return found
