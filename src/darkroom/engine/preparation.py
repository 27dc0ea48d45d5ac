"""What the executor readies before a run starts: weights, bundle, environment.

The cache (`DARKROOM_CACHE`) is written here only, by darkroom's own code outside any sandbox;
runs get the pieces they need mounted read-only, so no run can plant code or bytes that another
run will load. Everything is fetched with the run's token, as the run itself would.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from darkroom.bundles import read_bundle, unpack
from darkroom.bundles.environments import Wrap, ensure_environment
from darkroom.client import Client

__all__ = ["Prepared", "cache_root", "prepare_run"]


def cache_root() -> Path:
    return Path(os.environ.get("DARKROOM_CACHE", Path.home() / ".cache" / "darkroom"))


@dataclass
class Prepared:
    """What the executor readied in the cache for this run (host paths)."""

    weights: Path | None = None
    bundle: Path | None = None
    environment: Path | None = None  # the bundle's virtualenv


def prepare_run(
    client: Client,
    run_id: int,
    output: Callable[[str], None],
    cancelled: threading.Event,
    cache: Path | None = None,
    wrap: Wrap | None = None,
) -> Prepared:
    """Readies what the run needs; `wrap` confines the commands that build a bundle's
    environment (see `darkroom.bundles.environments`)."""
    cache = cache or cache_root()
    context = client.run_context(run_id)
    source = context["processing"]["source"]
    prepared = Prepared()
    model = context.get("model_version")
    if model is not None:
        weights = cache / "models" / f"{model['weights_sha256']}.onnx"
        if not weights.exists():
            weights.parent.mkdir(parents=True, exist_ok=True)
            output(f"downloading model weights {model['weights_sha256'][:12]}")
            client.download_weights(model["id"], weights)
        prepared.weights = weights
    if source.get("kind") == "bundle":
        bundle = _bundle_dir(client, run_id, source["sha256"], cache)
        requirements = list(source.get("requirements", []))
        env = ensure_environment(cache / "envs", requirements, output, cancelled, wrap)
        what = "built" if env.built else "reused"
        output(f"environment {env.key} {what} in {env.seconds:.2f} s "
               f"({len(requirements)} pinned requirements)")  # fmt: skip
        prepared.bundle, prepared.environment = bundle, env.path
    return prepared


def _bundle_dir(client: Client, run_id: int, sha256: str, cache: Path) -> Path:
    """The bundle's files, read-only, shared by every run of that revision on this machine."""
    target = cache / "bundles" / sha256
    if target.is_dir():
        return target
    data = client.download_run_bundle(run_id)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise RuntimeError(f"the bundle downloaded for run {run_id} does not match {sha256}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{sha256}.{os.getpid()}.{threading.get_ident()}"
    unpack(read_bundle(data), tmp)
    try:
        tmp.rename(target)
    except OSError:  # another run unpacked it first
        tmp.chmod(0o755)
        for root, dirs, _ in os.walk(tmp):
            for d in dirs:
                (Path(root) / d).chmod(0o755)
        shutil.rmtree(tmp, ignore_errors=True)
    return target
