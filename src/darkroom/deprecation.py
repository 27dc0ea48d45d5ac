"""Public names that were removed or renamed keep working for one minor version, warning.

`darkroom.runtime` and `darkroom.client` are what users' code imports: such a name answers as
before and warns with a `DeprecationWarning` naming its replacement (shown once per place in the
calling code, as Python shows any warning); CHANGELOG.md says when it goes.
"""

from __future__ import annotations

import warnings

__all__ = ["deprecated"]


def deprecated(name: str, replacement: str, removed_in: str = "0.3") -> None:
    warnings.warn(
        f"{name} is deprecated and goes in darkroom {removed_in}: use {replacement}",
        DeprecationWarning,
        stacklevel=3,  # the caller of the deprecated name
    )
