"""Virtualenvs for bundles: one per (interpreter, pinned requirements), built once, reused.

An environment is built by the first run that needs it, under a file lock so concurrent runs
wait for one build instead of racing; pip's output goes to the run's log, so a requirement that
cannot be installed is read there as the run's failure. The bundle's own packages come first on
`sys.path`; darkroom's (the runtime SDK and what it uses) are added after them, so a bundle needs
to list only what it adds. Environments unused for `DARKROOM_ENV_MAX_AGE_DAYS` days, then the
least recently used beyond `DARKROOM_ENV_MAX_BYTES`, are removed after each build.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import signal
import site
import stat
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from darkroom.bundles.manifest import requirements_key

__all__ = [
    "BuildCancelled",
    "EnvironmentBuildError",
    "PreparedEnvironment",
    "collect_garbage",
    "ensure_environment",
]

log = logging.getLogger(__name__)

READY = ".ready"
LAST_USED = ".last-used"
DEFAULT_MAX_AGE_DAYS = 30.0
DEFAULT_MAX_BYTES = 10 * 1024**3
STALE_BUILD_S = 86400.0


class EnvironmentBuildError(RuntimeError):
    """pip could not install the bundle's requirements (its output is in the run's log)."""


@dataclass(frozen=True, slots=True)
class PreparedEnvironment:
    key: str
    path: Path
    python: Path
    built: bool  # False: an existing environment was reused
    seconds: float


def interpreter_identity() -> str:
    """What an environment depends on besides the pins: this Python and darkroom's install."""
    return f"{sys.implementation.name}-{sys.version.split()[0]}-{sys.prefix}"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fp:
        fcntl.flock(fp, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fp, fcntl.LOCK_UN)


def _site_packages(env: Path) -> Path:
    paths = sysconfig.get_paths(vars={"base": str(env), "platbase": str(env)})
    return Path(paths["purelib"])


def _link_darkroom(env: Path) -> None:
    """Makes darkroom's packages importable after the environment's own (a .pth hook)."""
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:  # as darkroom's own interpreter sees them, no more
        dirs.append(site.getusersitepackages())
    lines = [f"import site; site.addsitedir({d!r})" for d in dirs if Path(d).is_dir()]
    target = _site_packages(env)
    target.mkdir(parents=True, exist_ok=True)
    (target / "zz_darkroom_runtime.pth").write_text("\n".join(lines) + "\n")


class BuildCancelled(EnvironmentBuildError):
    """The run was cancelled while its environment was being built."""


Output = Callable[[str], None]
# Wraps a build command so that it runs confined, writing only to the given folder.
Wrap = Callable[[list[str], Path], list[str]]


def _run(cmd: list[str], output: Output | None, cancelled: threading.Event | None) -> int:
    """Runs `cmd`, its output line by line to `output` (the run's log); killed at once when
    `cancelled` is set."""
    process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    assert process.stdout is not None
    watcher = None
    if cancelled is not None:

        def watch() -> None:
            while process.poll() is None:
                if cancelled.wait(0.1):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
    for raw in iter(process.stdout.readline, b""):
        if output is not None:
            output(raw.decode("utf-8", "replace").rstrip("\r\n"))
    process.stdout.close()
    code = process.wait()
    if cancelled is not None and cancelled.is_set():
        raise BuildCancelled("cancelled while building the environment")
    return code


def _build(
    tmp: Path,
    requirements: list[str],
    output: Output | None,
    cancelled: threading.Event | None,
    wrap: Wrap | None,
) -> None:
    if tmp.exists():
        shutil.rmtree(tmp)

    def confined(cmd: list[str]) -> list[str]:
        return wrap(cmd, tmp) if wrap is not None else cmd

    venv = [sys.executable, "-m", "venv", "--without-pip", str(tmp)]
    if _run(confined(venv), output, cancelled) != 0:
        raise EnvironmentBuildError(f"python -m venv {tmp} failed")
    if requirements:
        req = tmp / "requirements.txt"
        req.write_text("\n".join(requirements) + "\n")
        if output is not None:
            output(f"pip install {' '.join(requirements)}")
        code = _run(confined([sys.executable, "-m", "pip", "--python", str(tmp / "bin" / "python"),
                     "install", "--no-input", "--disable-pip-version-check",
                     "--progress-bar", "off", "-r", str(req)]), output, cancelled)  # fmt: skip
        if code != 0:
            raise EnvironmentBuildError(
                f"pip install of the bundle's requirements failed (exit code {code}): "
                "see pip's output above"
            )
    _link_darkroom(tmp)
    _reclaim(tmp)


def _reclaim(env: Path) -> None:
    """Gives an environment built by a sandbox's uid back to darkroom's, readable by every run:
    a run escaping as that uid must not be able to rewrite what later runs import."""
    uid, gid = os.geteuid(), os.getegid()
    paths = [str(env)]
    for dirpath, dirnames, filenames in os.walk(env):
        paths += [os.path.join(dirpath, name) for name in (*dirnames, *filenames)]
    for path in paths:
        info = os.lstat(path)
        if (info.st_uid, info.st_gid) != (uid, gid):
            os.lchown(path, uid, gid)
        if stat.S_ISLNK(info.st_mode):
            continue
        mode = stat.S_IMODE(info.st_mode)
        runnable = stat.S_ISDIR(info.st_mode) or mode & 0o111
        wanted = (mode | 0o444 | (0o111 if runnable else 0)) & ~0o022
        if wanted != mode:
            os.chmod(path, wanted)


def ensure_environment(
    root: Path,
    requirements: list[str],
    output: Output | None = None,
    cancelled: threading.Event | None = None,
    wrap: Wrap | None = None,
) -> PreparedEnvironment:
    """The environment for these pins, built now if no run built it before; pip's output goes
    to `output`. A build cancelled midway is removed at once. `wrap` confines the build's
    commands (the executor's sandbox: an sdist's setup.py is untrusted code)."""
    start = time.monotonic()
    key = requirements_key(interpreter_identity(), requirements)
    path = root / key
    built = False
    if not (path / READY).exists():
        with _locked(root / f"{key}.lock"):
            if not (path / READY).exists():
                tmp = root / f"{key}.building-{os.getpid()}"
                try:
                    _build(tmp, requirements, output, cancelled, wrap)
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
                if path.exists():  # a half-built leftover of a killed build
                    shutil.rmtree(path)
                tmp.rename(path)
                (path / READY).touch()
                built = True
    (path / LAST_USED).touch()
    if built:
        collect_garbage(root, keep=key)
    return PreparedEnvironment(key, path, path / "bin" / "python", built,
                               time.monotonic() - start)  # fmt: skip


def _size(path: Path) -> int:
    total = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def collect_garbage(
    root: Path,
    *,
    keep: str | None = None,
    max_age_s: float | None = None,
    max_bytes: int | None = None,
    now: float | None = None,
) -> list[str]:
    """Removes environments unused for too long, then the least recently used over the size
    budget; returns their keys. `keep` (the one just built) is never removed."""
    if max_age_s is None:
        days = float(os.environ.get("DARKROOM_ENV_MAX_AGE_DAYS", DEFAULT_MAX_AGE_DAYS))
        max_age_s = days * 86400
    if max_bytes is None:
        max_bytes = int(os.environ.get("DARKROOM_ENV_MAX_BYTES", DEFAULT_MAX_BYTES))
    now = time.time() if now is None else now
    envs = []
    for path in root.iterdir() if root.is_dir() else []:
        if ".building-" in path.name and now - path.stat().st_mtime > STALE_BUILD_S:
            shutil.rmtree(path, ignore_errors=True)  # a build killed midway (cancel, crash)
        elif path.is_dir() and (path / READY).exists() and path.name != keep:
            used = (path / LAST_USED).stat().st_mtime if (path / LAST_USED).exists() else 0.0
            envs.append((used, path))
    removed = [path for used, path in sorted(envs) if now - used > max_age_s]
    kept = [(path, _size(path)) for used, path in sorted(envs) if now - used <= max_age_s]
    total = sum(size for _, size in kept) + (_size(root / keep) if keep else 0)
    for path, size in kept:  # oldest first
        if total <= max_bytes:
            break
        total -= size
        removed.append(path)
    for path in removed:
        with _locked(root / f"{path.name}.lock"):
            shutil.rmtree(path, ignore_errors=True)
        log.info("removed environment %s", path.name)
    return [p.name for p in removed]
