"""What a run may use: a processing's `resources`, read and checked once.

A processing (its manifest, or the API's `resources` field) may ask for `memory`, `cpu_time_s`,
`processes`, `disk` (its temporary working directory) and `network`. Anything left out takes
the server's default. Sizes are bytes or strings such as `512MiB`, `2GiB`, `1.5G`. `cpus` is
for executors that place runs (Ray); `gpus` is claimed only by a worker with that many free
(see `darkroom.engine.gpus`), or placed by Ray.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from darkroom.errors import InvalidInput

__all__ = ["RunResources", "asked_gpus", "format_bytes", "parse_resources", "parse_size"]

KNOWN = ("memory", "cpu_time_s", "processes", "disk", "network", "cpus", "gpus")
UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3,
         "gb": 1000**3, "t": 1000**4, "tb": 1000**4, "kib": 1024, "mib": 1024**2,
         "gib": 1024**3, "tib": 1024**4}  # fmt: skip
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
MAX_SIZE = 2**50


@dataclass(frozen=True, slots=True)
class RunResources:
    """Limits of one run; None means unlimited."""

    memory_bytes: int | None = 4 * 1024**3
    cpu_time_s: int | None = None
    processes: int | None = 256
    disk_bytes: int | None = 1024**3
    network: bool = False

    def merged(self, resources: dict[str, Any] | None) -> RunResources:
        """These defaults overridden by what a processing asked for (already validated)."""
        asked = parse_resources(resources or {})
        return replace(self, **{k: v for k, v in asked.items() if v is not None})


def parse_size(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise _bad(field, "a size in bytes or a string like '2GiB'")
    if isinstance(value, int):
        number, unit = float(value), ""
    elif isinstance(value, str) and (m := SIZE.match(value)) and m.group(2).lower() in UNITS:
        number, unit = float(m.group(1)), m.group(2).lower()
    else:
        raise _bad(field, f"a size in bytes or a string like '2GiB', not {value!r}")
    size = int(number * UNITS[unit])
    if not 0 < size <= MAX_SIZE:
        raise _bad(field, f"a size between 1 byte and 1 PiB, not {value!r}")
    return size


def _positive_int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise _bad(field, f"a positive whole number, not {value!r}")
    return value


def parse_resources(resources: Any) -> dict[str, Any]:
    """The recognised fields of `resources`, typed; InvalidInput naming the field otherwise."""
    if not isinstance(resources, dict):
        raise _bad("", "an object such as {memory: 2GiB, network: false}")
    unknown = sorted(set(resources) - set(KNOWN))
    if unknown:
        raise _bad(unknown[0], f"unknown; known resources: {', '.join(KNOWN)}")
    out: dict[str, Any] = {}
    if resources.get("memory") is not None:
        out["memory_bytes"] = parse_size(resources["memory"], "memory")
    if resources.get("disk") is not None:
        out["disk_bytes"] = parse_size(resources["disk"], "disk")
    if resources.get("cpu_time_s") is not None:
        out["cpu_time_s"] = _positive_int(resources["cpu_time_s"], "cpu_time_s")
    if resources.get("processes") is not None:
        out["processes"] = _positive_int(resources["processes"], "processes")
    if resources.get("network") is not None:
        if not isinstance(resources["network"], bool):
            raise _bad("network", "true or false")
        out["network"] = resources["network"]
    for key in ("cpus", "gpus"):
        value = resources.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not 0 <= value <= 1024):  # fmt: skip
            raise _bad(key, f"a number from 0 to 1024, not {value!r}")
    return out


def asked_gpus(resources: Mapping[str, Any] | None) -> int:
    """How many whole GPUs a processing's `resources` ask for (a fraction asks for one)."""
    value = (resources or {}).get("gpus")
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return 0
    return math.ceil(value)


def format_bytes(size: int) -> str:
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            value = size / factor
            return f"{value:g} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"


def _bad(field: str, expected: str) -> InvalidInput:
    loc = ["resources", field] if field else ["resources"]
    name = ".".join(loc)
    return InvalidInput(f"{name}: {expected}", details={"loc": loc})
