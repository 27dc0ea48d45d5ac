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

A server running as root does not run sandboxes as root. In a user namespace bwrap's `nobody`
would be host uid 0; so as root, bwrap makes the sandbox without one (its mounts made as root,
which can reach darkroom's 0700 folders such as `/root/.cache`) and `setpriv` then starts the
run as an unprivileged host uid with no capability and no way to gain one
(`DARKROOM_SANDBOX_UID`; by default the first id of root's range in `/etc/subuid`, else
`nobody`): a kernel or bwrap escape from the run lands as a user that owns nothing. The run's
uid still needs to read the files it is given (not their folders): bundles, environments, weights
and blobs are stored readable.

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
    "RunAs",
    "SandboxSpec",
    "SandboxUnavailable",
    "build_command",
    "bwrap_command",
    "check_bwrap",
    "host_user",
    "runtime_paths",
    "spawn",
]

SANDBOX_MODES = ("bwrap", "none")
SOCKET_PATH = "/run/darkroom/server.sock"
TOKEN_PATH = "/run/darkroom/token"
WORKDIR = "/tmp/run"  # a run's working directory: empty, on its own size-limited tmpfs
NOBODY = 65534
SYSTEM_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")  # beside /usr, bound read-only
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


@dataclass(frozen=True, slots=True)
class RunAs:
    """The host user and group a root darkroom's sandboxes run as."""

    uid: int
    gid: int


def host_user(uid: int | None = None, subuid: Path = Path("/etc/subuid"),
              subgid: Path = Path("/etc/subgid")) -> RunAs | None:  # fmt: skip
    """Who sandboxes run as on the host: None (this process's uid, mapped to nobody in a user
    namespace) unless darkroom runs as root. As root: `uid` when given (0 keeps root: never for
    code you do not trust), else the first id of root's subordinate ranges, else nobody."""
    if os.geteuid() != 0:
        if uid is not None and uid != os.geteuid():
            raise SandboxUnavailable(
                f"DARKROOM_SANDBOX_UID={uid} needs darkroom to run as root (it runs as uid "
                f"{os.geteuid()}, and its sandboxes as that uid)"
            )
        return None
    if uid == 0:
        return None
    if uid is not None:
        return RunAs(uid, uid)
    return RunAs(_subordinate(subuid) or NOBODY, _subordinate(subgid) or NOBODY)


def _subordinate(path: Path) -> int | None:
    """The first id of root's range in an /etc/subuid-style file."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, _, rest = line.strip().partition(":")
        start, _, count = rest.partition(":")
        if name in ("root", "0") and start.isdigit() and count.isdigit() and int(count) > 0:
            return int(start) or None
    return None


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
    user: RunAs | None = field(default_factory=host_user)  # see host_user
    devices: list[Path] = field(default_factory=list)  # device files it may open (its GPUs)


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
    user = host_user()
    probe = [path, *_isolation_args(user), "--unshare-net", "--proc", "/proc", "--dev", "/dev",
             "--", *_drop_to(user), "true"]  # fmt: skip
    result = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise SandboxUnavailable(
            f"bwrap cannot create a sandbox here ({result.stderr.strip() or result.returncode}); "
            "user namespaces may be disabled (sysctl kernel.unprivileged_userns_clone=1, or "
            f"run as root); or {INSTALL_HINT}"
        )
    return path


def _isolation_args(user: RunAs | None) -> list[str]:
    """Own PID, IPC, UTS and cgroup namespaces, ended with its parent, in a session of its own
    (no terminal to inject keystrokes into), and the system's read-only files. Not root
    (`user` None): in a user namespace too, as nobody with no capability. Root: without one
    (it would map nobody to root), keeping only what `_drop_to` needs to become `user`."""
    common = ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
              "--die-with-parent", "--new-session", "--cap-drop", "ALL"]  # fmt: skip
    if user is None:
        return ["--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY), *common,
                *_system_binds()]  # fmt: skip
    keep = [arg for cap in DROP_CAPS for arg in ("--cap-add", cap)]
    return [*common, *keep, *_system_binds()]


def _drop_to(user: RunAs | None) -> list[str]:
    """The command prefix, inside the sandbox, that becomes `user` for good: no capability, no
    supplementary group, no new privileges (setuid files do nothing)."""
    if user is None:
        return []
    setpriv = shutil.which("setpriv", path="/usr/bin:/bin")
    if setpriv is None:
        raise SandboxUnavailable("darkroom runs as root and needs setpriv (util-linux) to run "
                                 "sandboxes as DARKROOM_SANDBOX_UID")  # fmt: skip
    return [setpriv, f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]  # fmt: skip


def _parent_dirs(dests: Iterable[str]) -> list[str]:
    """`--dir`s, readable by anyone, for the folders that lead to these mount points: bwrap
    makes them 0700, which a run's uid could not cross when bwrap makes the sandbox as root."""
    args: list[str] = []
    made: set[str] = set()
    system = [Path("/usr"), *(Path("/") / name for name in SYSTEM_DIRS), Path("/proc"),
              Path("/dev")]  # fmt: skip
    for dest in dests:
        for parent in reversed(Path(dest).parents):
            name = str(parent)
            if name in ("/", "/tmp") or name in made or _under_any(parent, system):
                continue
            made.add(name)
            args += ["--perms", "0755", "--dir", name]
    return args


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in SYSTEM_DIRS:
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
    files = {"/etc/passwd": _passwd(spec.user).encode(), "/etc/group": _group(spec.user).encode()}
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
    args = [bwrap, *_isolation_args(spec.user), "--hostname", spec.hostname]
    if not spec.network:
        args.append("--unshare-net")
    etc = ETC_FILES + (NETWORK_ETC_FILES if spec.network else ())
    args += ["--perms", "0755", "--dir", "/etc"]  # bwrap would make it 0700 as root
    for name in etc:
        path = Path("/etc") / name
        if path.exists():
            args += ["--ro-bind", str(path), str(path)]
    # Files written in are bwrap's (root's, when darkroom is root): readable by the run's uid.
    args += ["--perms", "0444", "--ro-bind-data", str(fds["/etc/passwd"]), "/etc/passwd",
             "--perms", "0444", "--ro-bind-data", str(fds["/etc/group"]), "/etc/group"]  # fmt: skip
    # /tmp first: darkroom's own environment may live below /tmp on the host.
    if spec.disk_bytes is not None:
        args += ["--size", str(spec.disk_bytes)]
    args += ["--perms", "1777", "--tmpfs", "/tmp", "--perms", "1777", "--dir", WORKDIR]
    ro_paths = _outermost([p.resolve() for p in spec.ro_paths])
    dests = [*map(str, ro_paths), *(inside for _, inside in spec.mounts), SOCKET_PATH, TOKEN_PATH]
    args += _parent_dirs(dests)
    for path in ro_paths:
        args += ["--ro-bind", str(path), str(path)]
    for host, inside in spec.mounts:
        args += ["--ro-bind", str(host), inside]
    args += ["--proc", "/proc", "--dev", "/dev"]
    for device in spec.devices:
        args += ["--dev-bind", str(device), str(device)]
    # /dev/shm: a tmpfs of its own under the same limit as /tmp (bwrap's /dev is RAM, unbounded)
    if spec.disk_bytes is not None:
        args += ["--size", str(spec.disk_bytes)]
    args += ["--perms", "1777", "--tmpfs", "/dev/shm"]
    if spec.socket is not None:
        args += ["--bind", str(spec.socket), SOCKET_PATH]
    if TOKEN_PATH in fds:
        args += ["--perms", "0444", "--ro-bind-data", str(fds[TOKEN_PATH]), TOKEN_PATH]
    # The sandbox's root and /dev are RAM too: read-only, so /tmp and /dev/shm, both sized,
    # are all a run can write.
    args += ["--remount-ro", "/dev", "--remount-ro", "/"]
    args += ["--chdir", WORKDIR, "--clearenv"]
    for key, value in sorted(spec.env.items()):
        args += ["--setenv", key, value]
    return [*args, "--", *_drop_to(spec.user), *spec.argv]


def build_command(
    cmd: list[str], writable: Path, ro_paths: list[Path], user: RunAs | None = None
) -> list[str]:
    """`cmd` (venv creation, pip install of a bundle's requirements) in a sandbox of its own,
    as `user` (see `host_user`): an sdist's setup.py is a stranger's code too. It gets the
    network (pip needs its index) and pip's configuration, writes only to the environment being
    built (`writable`, given to `user` for the build: the caller takes it back) and its own
    tmpfs, and sees nothing of darkroom's home, database, blobs or other environments."""
    bwrap = bwrap_path()
    if bwrap is None:
        raise SandboxUnavailable(f"bwrap is not installed: {INSTALL_HINT}")
    args = [bwrap, *_isolation_args(user), "--perms", "0755", "--dir", "/etc"]
    for name in (*ETC_FILES, *NETWORK_ETC_FILES, "pip.conf", "xdg/pip"):
        path = Path("/etc") / name
        if path.exists():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--perms", "1777", "--tmpfs", "/tmp"]
    ro_paths = _outermost([p.resolve() for p in [*ro_paths, *_pip_sources()]])
    args += _parent_dirs([*map(str, ro_paths), str(writable)])
    for path in ro_paths:
        args += ["--ro-bind", str(path), str(path)]
    writable.mkdir(parents=True, exist_ok=True)
    if user is not None:
        os.chown(writable, user.uid, user.gid)
    args += ["--bind", str(writable), str(writable), "--proc", "/proc", "--dev", "/dev",
             "--chdir", "/tmp", "--clearenv"]  # fmt: skip
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp",
           "LANG": "C.UTF-8"}  # fmt: skip
    env.update({k: v for k, v in os.environ.items() if k.startswith("PIP_")})
    for key, value in sorted(env.items()):
        args += ["--setenv", key, value]
    return [*args, "--", *_drop_to(user), *cmd]


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


DROP_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")  # what setpriv needs, then drops


def _passwd(user: RunAs | None) -> str:
    uid, gid = (user.uid, user.gid) if user is not None else (NOBODY, NOBODY)
    return f"nobody:x:{uid}:{gid}:darkroom run:/tmp:/usr/sbin/nologin\n"


def _group(user: RunAs | None) -> str:
    return f"nogroup:x:{user.gid if user is not None else NOBODY}:\n"


def _under_any(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _outermost(paths: list[Path]) -> list[Path]:
    """The paths without those inside another one of them, in a stable order."""
    out: list[Path] = []
    for path in sorted(set(paths), key=lambda p: len(p.parts)):
        if not _under_any(path, out):
            out.append(path)
    return out
