"""Processing parameters: a JSON Schema with defaults, checked at creation and at launch."""

from __future__ import annotations

import copy
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from darkroom.errors import InvalidInput

__all__ = ["check_schema", "resolve_parameters"]


def check_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Refuses a schema that is not an object schema, or whose defaults break it."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InvalidInput(
            f"parameters_schema is not a valid JSON Schema: {exc.message}",
            code="invalid_schema",
            details={"loc": ["parameters_schema", *exc.path]},
        ) from exc
    if schema.get("type", "object") != "object":
        raise InvalidInput(
            "parameters_schema must describe an object", code="invalid_schema",
            details={"loc": ["parameters_schema", "type"]},
        )  # fmt: skip
    defaults = _defaults(schema)
    errors = sorted(Draft202012Validator(schema).iter_errors(defaults), key=lambda e: list(e.path))
    if errors:
        raise InvalidInput(
            f"parameters_schema defaults do not validate: {errors[0].message}",
            code="invalid_schema",
            details={"loc": ["parameters_schema", "properties", *errors[0].path, "default"]},
        )
    return schema


def _defaults(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        name: copy.deepcopy(prop["default"])
        for name, prop in (schema.get("properties") or {}).items()
        if isinstance(prop, dict) and "default" in prop
    }


def resolve_parameters(schema: dict[str, Any], given: dict[str, Any] | None) -> dict[str, Any]:
    """The given parameters over the schema's defaults, validated.

    Unknown keys are refused unless the schema says `additionalProperties`. Errors answer 422
    with the path of the first bad field, e.g. `["parameters", "batch_size"]`.
    """
    strict = {"additionalProperties": False, **schema}
    resolved = {**_defaults(schema), **(given or {})}
    errors = sorted(Draft202012Validator(strict).iter_errors(resolved), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        loc = ["parameters", *first.path]
        if first.validator == "additionalProperties":
            extra = sorted(set(resolved) - set(schema.get("properties") or {}))
            loc = ["parameters", extra[0]] if extra else loc
        where = ".".join(str(p) for p in loc)
        raise InvalidInput(
            f"{where}: {first.message}",
            code="invalid_parameters",
            details=[{"loc": ["parameters", *e.path], "msg": e.message} for e in errors]
            if len(errors) > 1
            else {"loc": loc, "msg": first.message},
        )
    return resolved
