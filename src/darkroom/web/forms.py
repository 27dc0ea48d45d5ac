"""Parameter forms generated from a processing's JSON Schema, and their values read back.

Beyond JSON's own types, a schema may say where an array's strings come from: an array whose
items have an `enum`, or that carries `"x-choices": "labels"` (or `"tags"`), is a set of
checkboxes (the version's labels or its assets' tags); an object of numbers (a `split` of
ratios) is one number box per property. Anything else of object or array type is JSON typed in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from darkroom.domain.parameters import parameter_errors

__all__ = ["CHOICES", "MULTI_MARKER", "TRISTATE", "Field", "fields_of", "read_values", "submitted"]

# What `x-choices` may name; the form is given each list for the version it launches on.
CHOICES = ("labels", "tags")
# A hidden input naming each multi-choice field, so that none checked still reads as [].
MULTI_MARKER = "__multi"


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    widget: str  # number, integer, checkbox, tristate, select, text, json, multi, numbers
    value: str
    options: list[str]
    description: str
    checked: bool = False
    selected: tuple[str, ...] = ()  # multi: the options checked
    parts: tuple[tuple[str, str], ...] = ()  # numbers: (property, value typed) each


TRISTATE = (("", "either"), ("true", "yes"), ("false", "no"))


def _nullable(prop: dict[str, Any]) -> bool:
    kind = prop.get("type")
    return isinstance(kind, list) and "null" in kind


def _kind(prop: dict[str, Any]) -> str:
    kind = prop.get("type", "string")
    if isinstance(kind, list):  # e.g. ["integer", "null"]
        kind = next((k for k in kind if k != "null"), "string")
    return str(kind)


def _choices(prop: dict[str, Any], choices: Mapping[str, list[str]]) -> list[str] | None:
    """The strings an array parameter picks from, or None when it is typed as JSON."""
    if _kind(prop) != "array":
        return None
    items = prop.get("items") if isinstance(prop.get("items"), dict) else {}
    if isinstance(items.get("enum"), list):
        return [str(x) for x in items["enum"]]
    source = prop.get("x-choices")
    if source in CHOICES and source in choices and _kind(items) == "string":
        return list(choices[source])
    return None


def _number_parts(prop: dict[str, Any]) -> list[str] | None:
    """The properties of an object made of numbers only (a split's ratios), else None."""
    props = prop.get("properties")
    if _kind(prop) != "object" or not isinstance(props, dict) or not props:
        return None
    if not all(isinstance(p, dict) and _kind(p) in ("integer", "number") for p in props.values()):
        return None
    return list(props)


def fields_of(
    schema: dict[str, Any],
    values: dict[str, Any] | None = None,
    choices: Mapping[str, list[str]] | None = None,
) -> list[Field]:
    """One field per property, filled with `values` or the schema's defaults; `choices` holds
    the version's `labels` and `tags` for `x-choices` arrays."""
    out = []
    for name, prop in (schema.get("properties") or {}).items():
        value = (values or {}).get(name, prop.get("default"))
        kind = _kind(prop)
        description = str(prop.get("description", ""))
        options = _choices(prop, choices or {})
        parts = _number_parts(prop)
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
        elif options is not None and (value is None or isinstance(value, list)):
            picked = tuple(str(v) for v in value or [])
            shown = options + [v for v in picked if v not in options]  # kept, even if gone
            out.append(Field(name, "multi", "", shown, description, selected=picked))
        elif parts is not None and (value is None or isinstance(value, dict)):
            typed = tuple((key, "" if (value or {}).get(key) is None else str(value[key]))
                          for key in parts)  # fmt: skip
            out.append(Field(name, "numbers", "", parts, description, parts=typed))
        elif kind in ("object", "array"):
            # a string is what was typed and refused: shown back as typed, not quoted as JSON
            text = value if isinstance(value, str) else "" if value is None else json.dumps(value)
            out.append(Field(name, "json", text, [], description))
        else:
            out.append(Field(name, "text", "" if value is None else str(value), [], description))
    return out


def _number(raw: str, kind: str) -> int | float:
    return int(raw) if kind == "integer" else float(raw)


def read_values(
    schema: dict[str, Any], form: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Typed values from the submitted form, and per-field errors for what cannot be read. A
    multi-choice field's value is the list of what was checked (see `submitted`); a numbers
    field's are `<name>.<property>` entries."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, prop in (schema.get("properties") or {}).items():
        kind = _kind(prop)
        raw = form.get(name)
        parts = _number_parts(prop)
        if kind == "boolean" and _nullable(prop):
            if raw is not None:  # "" is "either": null, said on purpose
                values[name] = {"true": True, "false": False}.get(raw)
            continue
        if kind == "boolean":
            values[name] = raw == "on"
            continue
        if isinstance(raw, list):  # checked boxes
            values[name] = raw
            continue
        if parts is not None and raw is None and any(f"{name}.{k}" in form for k in parts):
            typed = {k: str(form.get(f"{name}.{k}") or "").strip() for k in parts}
            if not any(typed.values()):
                if _nullable(prop):
                    values[name] = None
                continue
            try:
                props = prop["properties"]
                values[name] = {k: _number(v, _kind(props[k])) for k, v in typed.items() if v}
            except ValueError:
                errors[name] = "each value must be a number"
            continue
        if raw is None or raw == "":
            continue  # the default applies
        try:
            if kind in ("integer", "number"):
                values[name] = _number(raw, kind)
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


def submitted(schema: dict[str, Any], form: Mapping[str, Any], names: Any) -> dict[str, Any]:
    """What was typed in these fields, to show back as typed beside their errors."""
    props = schema.get("properties") or {}
    out: dict[str, Any] = {}
    for name in names:
        parts = _number_parts(props.get(name) or {})
        if parts is not None and form.get(name) is None:
            out[name] = {k: form.get(f"{name}.{k}") or None for k in parts}
        else:
            out[name] = form.get(name)
    return out
