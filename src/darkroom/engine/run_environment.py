"""What a run's process gets of the server's environment: nothing that names or unlocks the
server (tokens, the database URL, storage credentials), its GPUs, and inside a sandbox only the
locale, time zone and numeric libraries' thread settings besides what names its run."""

from __future__ import annotations

from collections.abc import Mapping

from darkroom.engine import sandbox
from darkroom.runtime.prepared import GPUS_ENV

__all__ = [
    "RUN_BLOBS",
    "RUN_CACHE",
    "RUN_DIR",
    "gpu_environment",
    "run_environment",
    "sandbox_environment",
]

# What a run keeps of the server's DARKROOM_* settings (the runtime's own), and what it loses of
# the rest of the environment.
RUN_SETTINGS = frozenset({"DARKROOM_CACHE", "DARKROOM_ENV_MAX_AGE_DAYS", "DARKROOM_ENV_MAX_BYTES"})
STORAGE_SECRETS = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                             "PGPASSWORD"})  # fmt: skip
# Variables a sandboxed run keeps: locale, time zone, and numeric libraries' thread settings.
SANDBOX_PASSTHROUGH = ("LANG", "LC_ALL", "TZ")
SANDBOX_PASSTHROUGH_PREFIXES = ("OMP_", "OPENBLAS_", "MKL_")
# Where a sandbox sees what was prepared for it: no host path of the cache shows inside.
RUN_DIR = "/run/darkroom"
RUN_CACHE = f"{RUN_DIR}/cache"
RUN_BLOBS = f"{RUN_DIR}/blobs"


def run_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The server's environment minus its secrets: a processing acts with its run token only,
    so it gets neither the admin or user tokens, nor the database URL, nor storage credentials."""
    return {
        key: value for key, value in environ.items()
        if not (key.startswith("DARKROOM_") and key not in RUN_SETTINGS)
        and key not in STORAGE_SECRETS
    }  # fmt: skip


def sandbox_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """A sandboxed runtime's environment, but for what names its run."""
    env = {
        k: v
        for k, v in environ.items()
        if k in SANDBOX_PASSTHROUGH or k.startswith(SANDBOX_PASSTHROUGH_PREFIXES)
    }
    env.update({
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "DARKROOM_URL": "http://darkroom",
        "DARKROOM_SOCKET": sandbox.SOCKET_PATH,
        "DARKROOM_CACHE": RUN_CACHE,
        "TMPDIR": "/tmp",
    })  # fmt: skip
    return env


def gpu_environment(gpus: list[int]) -> dict[str, str]:
    """What tells a run (and CUDA) the GPUs it was lent: none for a CPU run."""
    env = {"CUDA_VISIBLE_DEVICES": ",".join(map(str, gpus))}
    return {**env, GPUS_ENV: str(len(gpus))} if gpus else env
