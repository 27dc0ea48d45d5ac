"""Checks on text that came from outside (URLs, forms, headers)."""

from __future__ import annotations

__all__ = ["is_number"]


def is_number(text: str) -> bool:
    """ASCII digits only: `str.isdigit()` is also true of '²' and other digits `int()` refuses,
    which turned an id-or-name like '²' into a 500."""
    return text.isascii() and text.isdigit()
