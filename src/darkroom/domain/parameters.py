"""Processing parameters: a JSON Schema with defaults, checked at creation and at launch.

Schemas come from users, so validating with them must not reach out or stall: references are
local only (`#/…`; nothing is ever fetched, from the network or from files), and `pattern`,
`patternProperties` and `additionalProperties` match with RE2, whose time is linear in the
input (a Python regex like `^(a+)+$` doubles its time per character).
"""

from __future__ import annotations

import copy
import difflib
import functools
from collections.abc import Iterator
from typing import Any

import re2
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError, ValidationError
from referencing import Registry
from referencing.exceptions import Unresolvable

from darkroom.errors import InvalidInput

__all__ = [
    "check_schema",
    "parameter_errors",
    "resolve_parameters",
]

REF_KEYS = ("$ref", "$dynamicRef")
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
# No resource is known and none is retrieved: a non-local reference is unresolvable.
NO_REMOTE = Registry()


@functools.lru_cache(maxsize=1024)
def _regex(pattern: str) -> Any:
    return re2.compile(pattern, _RE2_OPTIONS)


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: dict
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _regex(pattern).search(instance):
        shown = repr(instance) if len(instance) <= 80 else repr(instance[:80]) + "…"
        yield ValidationError(f"{shown} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: dict, instance: Any, schema: dict
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _regex(pattern).search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, allowed: Any, instance: Any, schema: dict
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    known = schema.get("properties", {})
    patterns = [_regex(p) for p in schema.get("patternProperties", {})]
    extras = sorted(
        k for k in instance if k not in known and not any(p.search(k) for p in patterns)
    )
    if validator.is_type(allowed, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], allowed, path=extra)
    elif not allowed and extras:
        yield ValidationError(
            f"Additional properties are not allowed ({', '.join(map(repr, extras))} unexpected)"
        )


ParametersValidator = validators.extend(
    Draft202012Validator,
    {"pattern": _pattern, "patternProperties": _pattern_properties,
     "additionalProperties": _additional_properties},
)  # fmt: skip


def _errors(schema: dict[str, Any], instance: Any) -> list[ValidationError]:
    """Validation errors, path order; a reference that does not resolve locally is one too
    (schemas stored before references were checked)."""
    try:
        errors = list(ParametersValidator(schema, registry=NO_REMOTE).iter_errors(instance))
    except Unresolvable as exc:
        raise _unsafe(f"unresolvable reference: {exc}", []) from exc
    return sorted(errors, key=lambda e: list(e.path))


def _check_safe(node: Any, path: list[str | int]) -> None:
    """Local references only; every pattern valid RE2."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            _check_safe(item, [*path, i])
        return
    if not isinstance(node, dict):
        return
    for key in REF_KEYS:
        ref = node.get(key)
        if ref is not None and not (isinstance(ref, str) and ref.startswith("#")):
            raise _unsafe(f"{key} {ref!r}: only local references (#/...) are allowed; "
                          "nothing is fetched", [*path, key])  # fmt: skip
    if "$id" in node and path:
        raise _unsafe("$id is allowed at the top of the schema only", [*path, "$id"])
    patterns = []
    if isinstance(node.get("pattern"), str):
        patterns.append((node["pattern"], [*path, "pattern"]))
    if isinstance(node.get("patternProperties"), dict):
        patterns += [(p, [*path, "patternProperties", p]) for p in node["patternProperties"]]
        if "unevaluatedProperties" in node:
            raise _unsafe("unevaluatedProperties with patternProperties is not supported",
                          [*path, "unevaluatedProperties"])  # fmt: skip
    for pattern, where in patterns:
        try:
            _regex(pattern)
        except re2.error as exc:
            reason = exc.args[0].decode() if isinstance(exc.args[0], bytes) else str(exc)
            raise _unsafe(f"pattern {pattern!r} is not supported: patterns are RE2 (no "
                          f"backreferences or lookaround): {reason}", where) from exc  # fmt: skip
    for key, value in node.items():
        if key not in ("default", "const", "enum", "examples"):
            _check_safe(value, [*path, key])


def _unsafe(message: str, loc: list[str | int]) -> InvalidInput:
    return InvalidInput(f"parameters_schema: {message}", code="invalid_schema",
                        details={"loc": ["parameters_schema", *loc]})  # fmt: skip


def check_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Refuses a schema that is not an object schema, refers outside itself, uses a pattern
    RE2 cannot run, or whose defaults break it."""
    _check_safe(schema, [])
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
    errors = _errors(schema, defaults)
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


MAX_LISTED_CHOICES = 12


def _shorten(error: ValidationError) -> None:
    """ "'Fliph' is not one of [98 names]" becomes "'Fliph' is not one of the 98 allowed
    values; did you mean 'HorizontalFlip'?"."""
    choices = error.validator_value if error.validator == "enum" else None
    if not isinstance(choices, list) or len(choices) <= MAX_LISTED_CHOICES:
        return
    message = f"{error.instance!r} is not one of the {len(choices)} allowed values"
    words = [c for c in choices if isinstance(c, str)]
    if isinstance(error.instance, str) and (
        close := difflib.get_close_matches(error.instance, words, n=3, cutoff=0.6)
    ):
        message += "; did you mean " + " or ".join(map(repr, close)) + "?"
    error.message = message


def parameter_errors(schema: dict[str, Any], given: dict[str, Any] | None) -> dict[str, str]:
    """Every invalid parameter at once, by top-level name (a form shows each by its field);
    what `resolve_parameters` would refuse, which reports them one after the other."""
    strict = {"additionalProperties": False, **schema}
    out: dict[str, str] = {}
    for error in _errors(strict, {**_defaults(schema), **(given or {})}):
        _shorten(error)
        out.setdefault(str(error.path[0]) if error.path else "", error.message)
    return out


INT64 = (-(2**63), 2**63 - 1)


def _oversized_integer(value: Any, path: list[str | int]) -> list[str | int] | None:
    """The path of the first integer outside 64 bits in `value`, or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return path if not INT64[0] <= value <= INT64[1] else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(
        value, list) else ()  # fmt: skip
    for key, item in items:
        found = _oversized_integer(item, [*path, key])
        if found is not None:
            return found
    return None


def resolve_parameters(schema: dict[str, Any], given: dict[str, Any] | None) -> dict[str, Any]:
    """The given parameters over the schema's defaults, validated.

    Unknown keys are refused unless the schema says `additionalProperties`. Errors answer 422
    with the path of the first bad field, e.g. `["parameters", "batch_size"]`. Integers must fit
    in 64 bits, whatever the schema says: a database, JSON reader or processing downstream
    cannot be relied on to take `10**400`.
    """
    strict = {"additionalProperties": False, **schema}
    resolved = {**_defaults(schema), **(given or {})}
    too_big = _oversized_integer(resolved, ["parameters"])
    if too_big is not None:
        where = ".".join(str(p) for p in too_big)
        raise InvalidInput(f"{where}: integers must fit in 64 bits (-2**63 to 2**63-1)",
                           code="invalid_parameters",
                           details={"loc": too_big, "msg": "integer out of range"})  # fmt: skip
    errors = _errors(strict, resolved)
    for error in errors:
        _shorten(error)
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
