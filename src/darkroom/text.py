"""Checks on text that came from outside (URLs, forms, headers)."""

from __future__ import annotations

from darkroom.errors import InvalidInput

__all__ = ["check_name", "has_control_characters", "is_number"]


def is_number(text: str) -> bool:
    """ASCII digits only: `str.isdigit()` is also true of '²' and other digits `int()` refuses,
    which turned an id-or-name like '²' into a 500."""
    return text.isascii() and text.isdigit()


def has_control_characters(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def check_name(name: str, what: str) -> str:
    """Names are trimmed, non-empty, at most 200 characters, without control characters (a
    NUL cannot even be stored in PostgreSQL text)."""
    name = name.strip()
    if has_control_characters(name):
        raise InvalidInput(f"{what} name must not contain control characters",
                           details={"field": "name"})  # fmt: skip
    if not name:
        raise InvalidInput(f"{what} name must not be empty", details={"field": "name"})
    if len(name) > 200:
        raise InvalidInput(f"{what} name is longer than 200 characters", details={"field": "name"})
    return name
