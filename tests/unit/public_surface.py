"""The public surface of `darkroom.runtime` and `darkroom.client`, one line per name: what
`tests/unit/public_api.txt` holds. Regenerate it after a deliberate change (and say so in
CHANGELOG.md): `python -m tests.unit.public_surface > tests/unit/public_api.txt`."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path
from typing import Any

import darkroom.client
import darkroom.runtime

COMMITTED = Path(__file__).with_name("public_api.txt")
SELF_ATTRIBUTE = re.compile(r"^\s+self\.([a-z]\w*)\s*(?::[^=]+)?=", re.M)


def _private(cls: type) -> bool:
    """A class of a private module (`darkroom.client._datasets`): how the public class is put
    together, not part of what users code against."""
    return any(part.startswith("_") for part in cls.__module__.split("."))


def _own_vars(cls: type) -> dict[str, Any]:
    """The class's members and those of the private classes it is made of, as one class."""
    merged: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass is cls or _private(klass):
            merged.update(vars(klass))
    return merged


def _members(cls: type) -> list[str]:
    out = []
    own = _own_vars(cls)
    fields = getattr(cls, "model_fields", None)
    if fields:
        out += [f"  .{name}: {field.annotation!s}" for name, field in sorted(fields.items())]
    elif dataclasses.is_dataclass(cls):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        out += [f"  .{name}: {field.type!s}" for name, field in sorted(fields.items())]
    for name in sorted(own):
        if name.startswith("_") or (fields and name in fields):
            continue
        member = own[name]
        if isinstance(member, property):
            out.append(f"  .{name} (property)")
        elif isinstance(member, staticmethod | classmethod):
            out.append(f"  .{name}{inspect.signature(member.__func__)} ({type(member).__name__})")
        elif inspect.isfunction(member):
            out.append(f"  .{name}{inspect.signature(member)}")
        elif not fields and not callable(member):
            out.append(f"  .{name} = {member!r}")
    init = own.get("__init__")
    if inspect.isfunction(init) and not fields:
        out.append(f"  .__init__{inspect.signature(init)}")
        try:
            source = inspect.getsource(init)
        except OSError:  # generated
            source = ""
        attributes = sorted(set(SELF_ATTRIBUTE.findall(source)))
        out += [f"  .{name} (attribute)" for name in attributes]
    return out


def surface() -> list[str]:
    lines: list[str] = []
    for module in (darkroom.client, darkroom.runtime):
        for name in sorted(module.__all__):
            obj: Any = getattr(module, name)
            qualified = f"{module.__name__}.{name}"
            if inspect.isclass(obj):
                bases = ", ".join(b.__name__ for b in obj.__bases__ if not _private(b)) or "object"
                lines.append(f"{qualified}({bases})")
                lines += _members(obj)
            elif callable(obj):
                lines.append(f"{qualified}{inspect.signature(obj)}")
            else:
                lines.append(f"{qualified} = {obj!r}")
    return lines


if __name__ == "__main__":
    print("\n".join(surface()))  # noqa: T201 (the file is this script's output)
