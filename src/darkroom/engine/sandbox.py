"""The run sandbox: bubblewrap namespaces around each run's processes.

A sandboxed run has its own mount, PID, IPC, UTS, cgroup, network and user namespaces, runs as
`nobody` without capabilities, and sees read-only only what it needs to execute: the system's
`/usr` (and its `/lib*` links), a short list of `/etc` files, the Python interpreter and
darkroom's environment, and what the executor prepared for this run (its bundle, its built
environment, its model weights). Read-write it has a fresh tmpfs as `/tmp` and working
directory and another as `/dev/shm`, each sized by its disk limit; its root and `/dev` are
read-only. It does not see darkroom's home, the database, the blob store, the cache as a
whole, other runs or the host's `/proc`. Its only network is the server's Unix
socket, unless its processing asks for `network: true`. The token arrives in a file, never in
an environment or a command line another process could read.

`--die-with-parent` ties the sandbox to the thread that started it (the scheduler's), so a
killed worker or server takes its runs with it; when the run's main process ends the PID
namespace ends with it, daemons included.
"""

from __future__ import annotations

import configparser
import contextlib
import functools
import os
import shutil
import site
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from darkroom.errors import DarkroomError

__all__ = [
    "SANDBOX_MODES",
    "SandboxSpec",
    "SandboxUnavailable",
    "build_command",
    "bwrap_command",
    "check_bwrap",
    "runtime_paths",
    "spawn",
]

SANDBOX_MODES = ("bwrap", "none")
SOCKET_PATH = "/run/darkroom/server.sock"
TOKEN_PATH = "/run/darkroom/token"
WORKDIR = "/tmp/run"  # a run's working directory: empty, on its own size-limited tmpfs
NOBODY = 65534
# Files of /etc a Python program may read: the loader, names, TLS roots, time zone.
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "ssl",
             "ca-certificates", "ca-certificates.conf", "pki", "nsswitch.conf", "host.conf",
             "hosts", "mime.types", "os-release", "alternatives", "fonts", "gai.conf")  # fmt: skip
NETWORK_ETC_FILES = ("resolv.conf",)
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install "
    "bubblewrap), or set DARKROOM_SANDBOX=none to run processings unsandboxed (only for code "
    "you trust: a run can then read the server's files and reach the network)"
)


class SandboxUnavailable(DarkroomError):
    code = "sandbox_unavailable"


@dataclass
class SandboxSpec:
    """One run's sandbox: what it runs, what it sees, what it may use."""

    argv: list[str]
    env: dict[str, str]
    token: str | None  # None: a standby runtime, whose token comes later through its stdin
    socket: Path | None  # the server's socket, at SOCKET_PATH inside; None: no way to it
    ro_paths: list[Path] = field(default_factory=list)  # read-only at the same path
    mounts: list[tuple[Path, str]] = field(default_factory=list)  # read-only, host -> inside
    network: bool = False
    disk_bytes: int | None = None
    hostname: str = "darkroom-run"


@functools.cache
def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def check_bwrap() -> str:
    """The bwrap binary, after proving that it can create the namespaces runs need."""
    path = bwrap_path()
    if path is None:
        raise SandboxUnavailable(
            f"DARKROOM_SANDBOX=bwrap but bwrap is not installed: {INSTALL_HINT}"
        )
    probe = [path, *_system_binds(), "--unshare-all", "--uid", str(NOBODY), "--gid", str(NOBODY),
             "--die-with-parent", "--proc", "/proc", "--dev", "/dev", "--", "true"]  # fmt: skip
    result = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise SandboxUnavailable(
            f"bwrap cannot create a sandbox here ({result.stderr.strip() or result.returncode}); "
            "user namespaces may be disabled (sysctl kernel.unprivileged_userns_clone=1, or "
            f"run as root); or {INSTALL_HINT}"
        )
    return path


def _isolation_args() -> list[str]:
    """Own user, PID, IPC, UTS and cgroup namespaces, as nobody with no capability, ended with
    its parent, in a session of its own (no terminal to inject keystrokes into), and the
    system's read-only files."""
    return ["--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--uid", str(NOBODY), "--gid", str(NOBODY),
            "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            *_system_binds()]  # fmt: skip


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


def runtime_paths(exclude: Iterable[Path] = ()) -> list[Path]:
    """Folders a run needs to execute darkroom's Python: the interpreter's prefixes and every
    folder on darkroom's import path (an editable install's source included), minus anything
    inside `exclude` (darkroom's home, the blob store, the cache) and the working directory."""
    excluded = [p.resolve() for p in exclude]
    candidates = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix),
                  Path(sys.base_exec_prefix), *(Path(p) for p in sys.path if p),
                  *(Path(p) for p in site.getsitepackages())]  # fmt: skip
    if Path(sys.executable).exists():
        candidates.append(Path(sys.executable).resolve().parent.parent)
    cwd = Path.cwd().resolve()
    found: list[Path] = []
    for path in candidates:
        try:
            path = path.resolve()
        except OSError:
            continue
        if not path.is_dir() or path in (cwd, Path("/")) or _under_any(path, [Path("/usr")]):
            continue
        if any(_under_any(path, [e]) or _under_any(e, [path]) for e in excluded):
            continue
        found.append(path)
    return _outermost(found)


def spawn(
    spec: SandboxSpec, prefix: list[str] | None = None, **popen: Any
) -> subprocess.Popen[bytes]:
    """Starts the sandbox (behind `prefix`, e.g. prlimit). Small files (the token, passwd) go
    in through pipes that bwrap reads into the sandbox; they never appear in a command line or
    an environment."""
    bwrap = bwrap_path()
    if bwrap is None:
        raise SandboxUnavailable(f"bwrap is not installed: {INSTALL_HINT}")
    files = {"/etc/passwd": PASSWD.encode(), "/etc/group": GROUP.encode()}
    if spec.token is not None:
        files[TOKEN_PATH] = spec.token.encode()
    fds: dict[str, int] = {}
    try:
        for dest, data in files.items():
            read, write = os.pipe()
            os.write(write, data)  # a few bytes: fits in the pipe's buffer
            os.close(write)
            fds[dest] = read
        argv = [*(prefix or []), *bwrap_command(bwrap, spec, fds)]
        return subprocess.Popen(argv, pass_fds=tuple(fds.values()), **popen)
    finally:
        for fd in fds.values():
            os.close(fd)


def bwrap_command(bwrap: str, spec: SandboxSpec, fds: dict[str, int]) -> list[str]:
    args = [bwrap, *_isolation_args(), "--hostname", spec.hostname]
    if not spec.network:
        args.append("--unshare-net")
    etc = ETC_FILES + (NETWORK_ETC_FILES if spec.network else ())
    for name in etc:
        path = Path("/etc") / name
        if path.exists():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--ro-bind-data", str(fds["/etc/passwd"]), "/etc/passwd",
             "--ro-bind-data", str(fds["/etc/group"]), "/etc/group"]  # fmt: skip
    # /tmp first: darkroom's own environment may live below /tmp on the host.
    if spec.disk_bytes is not None:
        args += ["--size", str(spec.disk_bytes)]
    args += ["--tmpfs", "/tmp", "--dir", WORKDIR]
    for path in _outermost([p.resolve() for p in spec.ro_paths]):
        args += ["--ro-bind", str(path), str(path)]
    for host, inside in spec.mounts:
        args += ["--ro-bind", str(host), inside]
    args += ["--proc", "/proc", "--dev", "/dev"]
    # /dev/shm: a tmpfs of its own under the same limit as /tmp (bwrap's /dev is RAM, unbounded)
    if spec.disk_bytes is not None:
        args += ["--size", str(spec.disk_bytes)]
    args += ["--tmpfs", "/dev/shm"]
    if spec.socket is not None:
        args += ["--bind", str(spec.socket), SOCKET_PATH]
    if TOKEN_PATH in fds:
        args += ["--ro-bind-data", str(fds[TOKEN_PATH]), TOKEN_PATH]
    # The sandbox's root and /dev are RAM too: read-only, so /tmp and /dev/shm, both sized,
    # are all a run can write.
    args += ["--remount-ro", "/dev", "--remount-ro", "/"]
    args += ["--chdir", WORKDIR, "--clearenv"]
    for key, value in sorted(spec.env.items()):
        args += ["--setenv", key, value]
    return [*args, "--", *spec.argv]


def build_command(cmd: list[str], writable: Path, ro_paths: list[Path]) -> list[str]:
    """`cmd` (venv creation, pip install of a bundle's requirements) in a sandbox of its own:
    an sdist's setup.py is a stranger's code too. It gets the network (pip needs its index)
    and pip's configuration, writes only to the environment being built (`writable`) and its
    own tmpfs, and sees nothing of darkroom's home, database, blobs or other environments."""
    bwrap = bwrap_path()
    if bwrap is None:
        raise SandboxUnavailable(f"bwrap is not installed: {INSTALL_HINT}")
    args = [bwrap, *_isolation_args()]
    for name in (*ETC_FILES, *NETWORK_ETC_FILES, "pip.conf", "xdg/pip"):
        path = Path("/etc") / name
        if path.exists():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--tmpfs", "/tmp"]
    for path in _outermost([p.resolve() for p in [*ro_paths, *_pip_sources()]]):
        args += ["--ro-bind", str(path), str(path)]
    writable.mkdir(parents=True, exist_ok=True)
    args += ["--bind", str(writable), str(writable), "--proc", "/proc", "--dev", "/dev",
             "--chdir", "/tmp", "--clearenv"]  # fmt: skip
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp",
           "LANG": "C.UTF-8"}  # fmt: skip
    env.update({k: v for k, v in os.environ.items() if k.startswith("PIP_")})
    for key, value in sorted(env.items()):
        args += ["--setenv", key, value]
    return [*args, "--", *cmd]


def _pip_sources() -> list[Path]:
    """Local folders and files pip's configuration points at (find-links, file:// indexes,
    constraints), so that pip in a build sandbox finds what it would find outside."""
    values = [v for k, v in os.environ.items() if k.startswith("PIP_")]
    user = Path.home() / ".config" / "pip" / "pip.conf"
    for conf in (Path("/etc/pip.conf"), Path("/etc/xdg/pip/pip.conf"), user):
        parser = configparser.ConfigParser()
        with contextlib.suppress(OSError, configparser.Error):
            parser.read(conf)
            values += [v for section in parser.values() for v in section.values()]
    paths = [conf for conf in (user,) if conf.exists()]
    for value in values:
        for token in value.split():
            token = token.removeprefix("file://")
            if token.startswith("/") and Path(token).exists():
                paths.append(Path(token))
    return paths


PASSWD = f"nobody:x:{NOBODY}:{NOBODY}:darkroom run:/tmp:/usr/sbin/nologin\n"
GROUP = f"nogroup:x:{NOBODY}:\n"


def _under_any(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _outermost(paths: list[Path]) -> list[Path]:
    """The paths without those inside another one of them, in a stable order."""
    out: list[Path] = []
    for path in sorted(set(paths), key=lambda p: len(p.parts)):
        if not _under_any(path, out):
            out.append(path)
    return out
