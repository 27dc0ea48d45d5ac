"""Running a bundle revision: its code unpacked read-only, in its own virtualenv.

The runtime process the executor started (darkroom's interpreter) prepares, then runs the
processing in a child process of the bundle's environment and waits for it:

1. the bundle, fetched with the run's token, unpacked once per hash under
   `$DARKROOM_CACHE/bundles/<sha256>` and made read-only;
2. the environment for its pinned requirements (`darkroom.bundles.environments`), built on first
   use with pip's output in the run's log;
3. a fresh working directory, removed afterwards.

The child shares the process group, so cancel and timeout signals reach it; the parent outlives
it to clean up and hands its exit status (or the signal that ended it) back to the executor.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from darkroom.bundles import read_bundle, unpack
from darkroom.bundles.environments import EnvironmentBuildError, ensure_environment
from darkroom.runtime.context import ProcessingContext

__all__ = ["BUNDLE_DIR_ENV", "cache_root", "run_bundle"]

BUNDLE_DIR_ENV = "DARKROOM_BUNDLE_DIR"
log = logging.getLogger("darkroom.processing")


def cache_root() -> Path:
    return Path(os.environ.get("DARKROOM_CACHE", Path.home() / ".cache" / "darkroom"))


def _bundle_dir(ctx: ProcessingContext, sha256: str) -> Path:
    """The bundle's files, read-only, shared by every run of that revision on this machine."""
    target = cache_root() / "bundles" / sha256
    if target.is_dir():
        return target
    data = ctx.client.download_run_bundle(ctx.run_id)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise RuntimeError(f"the bundle downloaded for run {ctx.run_id} does not match {sha256}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{sha256}.{os.getpid()}"
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


def run_bundle(ctx: ProcessingContext) -> int:
    """Prepares the bundle and its environment, runs it, returns the exit code to report."""
    source = ctx.processing["source"]
    try:
        bundle_dir = _bundle_dir(ctx, source["sha256"])
        requirements = list(source.get("requirements", []))
        env = ensure_environment(cache_root() / "envs", requirements)
    except EnvironmentBuildError as exc:
        sys.stderr.write(f"EnvironmentBuildError: {exc}\n")  # the run's error summary
        sys.stderr.flush()
        return 2
    what = "built" if env.built else "reused"
    log.info("environment %s %s in %.2f s (%d pinned requirements)", env.key, what, env.seconds,
             len(requirements))  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix=f"darkroom-run-{ctx.run_id}-"))
    # The child gets the group's SIGTERM itself; a no-op handler (not SIG_IGN, which a child
    # would inherit) keeps this process alive to clean up after it.
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        child = subprocess.Popen(
            [str(env.python), "-m", "darkroom.runtime"], cwd=workdir, stdin=subprocess.DEVNULL,
            env={**os.environ, BUNDLE_DIR_ENV: str(bundle_dir), "PYTHONDONTWRITEBYTECODE": "1"},
        )  # fmt: skip
        code = child.wait()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)
    if code < 0:  # ended by a signal: end the same way, so the executor reports it as such
        sys.stdout.flush()
        with contextlib.suppress(OSError):
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
    return code
