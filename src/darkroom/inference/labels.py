"""Mapping a model's classes onto a version's labels (used at launch and by processings)."""

from __future__ import annotations

__all__ = ["map_labels"]


def map_labels(
    model_labels: list[str], version_labels: list[str], mapping: dict[str, str] | None = None
) -> dict[int, str]:
    """Model class index → version label name: the explicit `mapping` (model label → version
    label) first, then equal names, case-insensitively. Classes that map to nothing are left out:
    a pre-annotation only writes labels that exist in the version."""
    by_lower = {name.lower(): name for name in version_labels}
    explicit = {k.lower(): v for k, v in (mapping or {}).items()}
    result = {}
    for index, label in enumerate(model_labels):
        target = explicit.get(label.lower(), label)
        if target.lower() in by_lower:
            result[index] = by_lower[target.lower()]
    return result
