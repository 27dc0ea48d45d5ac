"""Parameter forms generated from a processing's JSON Schema, and their values read back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from darkroom.domain.parameters import parameter_errors

__all__ = ["TRISTATE", "Field", "fields_of", "read_values"]


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    widget: str  # number, integer, checkbox, tristate, select, text, json
    value: str
    options: list[str]
    description: str
    checked: bool = False


TRISTATE = (("", "either"), ("true", "yes"), ("false", "no"))


def _nullable(prop: dict[str, Any]) -> bool:
    kind = prop.get("type")
    return isinstance(kind, list) and "null" in kind


def _kind(prop: dict[str, Any]) -> str:
    kind = prop.get("type", "string")
    if isinstance(kind, list):  # e.g. ["integer", "null"]
        kind = next((k for k in kind if k != "null"), "string")
    return str(kind)


def fields_of(schema: dict[str, Any], values: dict[str, Any] | None = None) -> list[Field]:
    """One field per property, filled with `values` or the schema's defaults."""
    out = []
    for name, prop in (schema.get("properties") or {}).items():
        value = (values or {}).get(name, prop.get("default"))
        kind = _kind(prop)
        description = str(prop.get("description", ""))
        if "enum" in prop:
            out.append(
                Field(name, "select", str(value or ""), [str(x) for x in prop["enum"]], description)
            )
        elif kind == "boolean" and _nullable(prop):  # null is a third answer ("either")
            chosen = "" if value is None else "true" if value else "false"
            out.append(Field(name, "tristate", chosen, [v for v, _ in TRISTATE], description))
        elif kind == "boolean":
            out.append(Field(name, "checkbox", "", [], description, checked=bool(value)))
        elif kind in ("integer", "number"):
            out.append(Field(name, kind, "" if value is None else str(value), [], description))
        elif kind in ("object", "array"):
            # a string is what was typed and refused: shown back as typed, not quoted as JSON
            text = value if isinstance(value, str) else "" if value is None else json.dumps(value)
            out.append(Field(name, "json", text, [], description))
        else:
            out.append(Field(name, "text", "" if value is None else str(value), [], description))
    return out


def read_values(
    schema: dict[str, Any], form: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Typed values from submitted strings, and per-field errors for what cannot be read."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, prop in (schema.get("properties") or {}).items():
        kind = _kind(prop)
        raw = form.get(name)
        if kind == "boolean" and _nullable(prop):
            if raw is not None:  # "" is "either": null, said on purpose
                values[name] = {"true": True, "false": False}.get(raw)
            continue
        if kind == "boolean":
            values[name] = raw == "on"
            continue
        if raw is None or raw == "":
            continue  # the default applies
        try:
            if kind == "integer":
                values[name] = int(raw)
            elif kind == "number":
                values[name] = float(raw)
            elif kind in ("object", "array"):
                values[name] = json.loads(raw)
            else:
                values[name] = raw
        except ValueError:
            errors[name] = f"not a valid {kind}"
    # What the schema refuses (a minimum, an enum…) is said now too, not after the rest is fixed.
    checked = {k: v for k, v in values.items() if k not in errors}
    for name, message in parameter_errors(schema, checked).items():
        if name in (schema.get("properties") or {}):
            errors.setdefault(name, message)
    return values, errors
