"""What the executor readies before a run starts: weights, bundle, environment, input images.

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
    blobs: Path | None = None  # hard links to the input version's image files, by sha256


def prepare_run(
    client: Client,
    run_id: int,
    output: Callable[[str], None],
    cancelled: threading.Event,
    cache: Path | None = None,
    wrap: Wrap | None = None,
    blobs: tuple[Path, Path] | None = None,
) -> Prepared:
    """Readies what the run needs; `wrap` confines the commands that build a bundle's
    environment (see `darkroom.bundles.environments`). `blobs`: (the local blob store's root,
    a folder to create on its file system) to link the input images into."""
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
    if blobs is not None and context.get("target_version"):
        store_root, target = blobs
        linked = link_input_blobs(client, context["target_version"]["id"], store_root, target)
        if linked:
            prepared.blobs = target
    return prepared


def link_input_blobs(client: Client, version_id: int, store_root: Path, target: Path) -> int:
    """Hard links, in `target`, to the files of the version's images in a local blob store.

    The run then reads its input from disk rather than through the API (no copy through the
    server). Only that version's blobs are linked: what its token may download anyway. A blob
    that is not on this machine (a worker elsewhere) or a store on another file system is left
    out, and the run downloads those images. Returns how many were linked."""
    target.mkdir(parents=True, exist_ok=True)
    linked = 0
    for asset in client.iter_assets(version_id):
        sha = asset["blob_sha256"]
        source = store_root / sha[:2] / sha[2:4] / sha
        try:
            os.link(source, target / sha)
        except FileExistsError:
            continue
        except OSError:  # not here, or another file system: the API serves it
            continue
        linked += 1
    return linked


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
