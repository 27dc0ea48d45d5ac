"""What the executor readies before a run starts: weights, bundle, environment, input images.

The cache (`DARKROOM_CACHE`) is written here only, by darkroom's own code outside any sandbox;
runs get the pieces they need mounted read-only, so no run can plant code or bytes that another
run will load. Everything is fetched with the run's token, as the run itself would.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from darkroom.bundles import read_bundle, unpack
from darkroom.bundles.environments import Wrap, ensure_environment
from darkroom.client import Client
from darkroom.runtime.prepared import cache_root
from darkroom.sources import BundleSource, parse_source

__all__ = ["InputLinker", "Prepared", "prepare_run"]

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """What the executor readied in the cache for this run (host paths)."""

    weights: Path | None = None
    bundle: Path | None = None
    environment: Path | None = None  # the bundle's virtualenv
    blobs: Path | None = None  # hard links to the input version's image files, by sha256
    input_version_id: int | None = None  # whose blobs an `InputLinker` links there


def prepare_run(
    client: Client,
    run_id: int,
    output: Callable[[str], None],
    cancelled: threading.Event,
    cache: Path | None = None,
    wrap: Wrap | None = None,
    links: Path | None = None,
) -> Prepared:
    """Readies what the run needs; `wrap` confines the commands that build a bundle's
    environment (see `darkroom.bundles.environments`). `links`: a folder to create, on the
    local blob store's file system, for an `InputLinker` to link the input images into while
    the run starts."""
    cache = cache or cache_root()
    context = client.run_context(run_id)
    source = parse_source(context["processing"]["source"], strict=False)
    prepared = Prepared()
    model = context.get("model_version")
    if model is not None:
        weights = cache / "models" / f"{model['weights_sha256']}.onnx"
        if not weights.exists():
            weights.parent.mkdir(parents=True, exist_ok=True)
            output(f"downloading model weights {model['weights_sha256'][:12]}")
            client.download_weights(model["id"], weights)
            weights.chmod(0o644)  # a root darkroom's runs read it as another uid
        prepared.weights = weights
    if isinstance(source, BundleSource):
        bundle = _bundle_dir(client, run_id, source.sha256, cache)
        requirements = list(source.requirements)
        env = ensure_environment(cache / "envs", requirements, output, cancelled, wrap)
        what = "built" if env.built else "reused"
        output(f"environment {env.key} {what} in {env.seconds:.2f} s "
               f"({len(requirements)} pinned requirements)")  # fmt: skip
        prepared.bundle, prepared.environment = bundle, env.path
    if links is not None and context.get("target_version"):
        links.mkdir(parents=True, exist_ok=True)
        prepared.blobs = links
        prepared.input_version_id = context["target_version"]["id"]
    return prepared


class InputLinker:
    """Hard links, in `target`, to the files of the input version's images in a local blob
    store, made in the background while the run starts.

    The run then reads its input from disk rather than through the API (no copy through the
    server); an image not linked yet, not on this machine (a worker elsewhere) or on another
    file system is downloaded instead. Only that version's blobs are linked: what its token may
    download anyway. In the background because a run that reads no image (or a few of a large
    version) must not wait for a listing of every asset."""

    def __init__(
        self, server_url: str, token: str, version_id: int, store_root: Path, target: Path
    ) -> None:
        self.server_url, self.token, self.version_id = server_url, token, version_id
        self.store_root, self.target = store_root, target
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="darkroom-link", daemon=True)

    def start(self) -> InputLinker:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 1.0) -> None:
        """Stops at the next asset; waits at most `timeout_s` (the scheduler's thread calls
        this): a link made after its folder is gone just fails."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            with Client(self.server_url, self.token) as client:
                for asset in client.iter_assets(self.version_id):
                    if self._stop.is_set():
                        return
                    sha = asset["blob_sha256"]
                    blob = self.store_root / sha[:2] / sha[2:4] / sha
                    with contextlib.suppress(OSError):  # linked already, not here, elsewhere
                        if blob.stat().st_mode & 0o004:  # else the run's uid cannot read it
                            os.link(blob, self.target / sha)
        except Exception as exc:  # the run downloads what is not linked
            log.info("linking the input of version %s stopped: %s", self.version_id, exc)


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
