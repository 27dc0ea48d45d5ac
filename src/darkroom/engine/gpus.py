"""The GPUs of this machine: how a worker counts them, advertises them and lends them to runs.

A worker counts its NVIDIA GPUs once at start from their device files (`/dev/nvidia0`, …),
within `CUDA_VISIBLE_DEVICES` when that is set, unless `DARKROOM_GPUS` says how many to use
(0: none). It claims a run asking for `gpus: N` only while N of them are free, and lends that
run N devices for its lifetime: the sandbox gets their device files (and the driver's control
files) and `CUDA_VISIBLE_DEVICES` names them, so two runs never share a GPU.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path

__all__ = ["GpuPool", "detect_gpus", "device_files", "worker_gpus"]

DEVICE = re.compile(r"^nvidia(\d+)$")
# What CUDA opens besides the GPU itself (those present are bound into a GPU run's sandbox).
CONTROL_FILES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")


def detect_gpus(dev: Path = Path("/dev"), environ: Mapping[str, str] = os.environ) -> list[int]:
    """The indices of this machine's NVIDIA GPUs darkroom may use, in order."""
    try:
        found = sorted(int(m.group(1)) for p in dev.iterdir() if (m := DEVICE.match(p.name)))
    except OSError:
        return []
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return found
    wanted = [int(x) for x in visible.split(",") if x.strip().isdigit()]
    return [i for i in wanted if i in found]


def worker_gpus(count: int | None, found: list[int] | None = None) -> list[int]:
    """The GPUs a worker lends: those found (`detect_gpus`), or the first `count` of them when
    set; more than found means devices darkroom cannot see as files (numbered from 0)."""
    found = detect_gpus() if found is None else found
    if count is None:
        return found
    return found[:count] if count <= len(found) else list(range(count))


def device_files(indices: list[int], dev: Path = Path("/dev")) -> list[Path]:
    """The device files a run on these GPUs opens: theirs and the driver's control files."""
    files = [dev / name for name in CONTROL_FILES] + [dev / f"nvidia{i}" for i in indices]
    return [path for path in files if path.exists()]


class GpuPool:
    """The GPUs a worker lends to its runs, each to one run at a time."""

    def __init__(self, indices: list[int]) -> None:
        self.indices = list(indices)
        self._free = list(indices)
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        return len(self.indices)

    def free(self) -> int:
        with self._lock:
            return len(self._free)

    def take(self, count: int) -> list[int] | None:
        """`count` free GPUs, now lent out; None when fewer are free."""
        if count <= 0:
            return []
        with self._lock:
            if len(self._free) < count:
                return None
            taken, self._free = self._free[:count], self._free[count:]
            return taken

    def give_back(self, indices: list[int]) -> None:
        with self._lock:
            self._free = sorted({*self._free, *indices} & set(self.indices))
