"""The sandbox's command line and the resources a processing may ask for."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from darkroom.domain.resources import RunResources, format_bytes, parse_resources
from darkroom.engine import processes, sandbox
from darkroom.errors import InvalidInput


def test_bwrap_is_installed_and_can_make_namespaces():
    """`make test` needs it (scripts/system-deps.sh installs it): runs are sandboxed by default."""
    assert sandbox.check_bwrap().endswith("bwrap")


def test_runtime_paths_hide_darkrooms_home_and_the_working_directory(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.chdir(home)
    monkeypatch.setattr(sys, "path", [*sys.path, str(home), str(home / "sub"), ""])
    paths = sandbox.runtime_paths([home])
    assert Path(sys.base_prefix).resolve() in paths or any(
        p in Path(sys.base_prefix).resolve().parents for p in paths
    )
    assert all(home != p and home not in p.parents and p not in home.parents for p in paths)
    assert Path("/") not in paths


def test_the_token_is_in_no_command_line(tmp_path):
    spec = sandbox.SandboxSpec(argv=["true"], env={"A": "1"}, token="secret-token",
                               socket=tmp_path / "s.sock")  # fmt: skip
    argv = sandbox.bwrap_command("bwrap", spec, {sandbox.TOKEN_PATH: 5, "/etc/passwd": 6,
                                                 "/etc/group": 7})  # fmt: skip
    assert "secret-token" not in " ".join(argv)
    assert "--unshare-net" in argv
    assert "--die-with-parent" in argv
    with_net = sandbox.bwrap_command("bwrap", sandbox.SandboxSpec(
        argv=["true"], env={}, token="t", socket=tmp_path / "s.sock", network=True,
    ), {sandbox.TOKEN_PATH: 5, "/etc/passwd": 6, "/etc/group": 7})  # fmt: skip
    assert "--unshare-net" not in with_net


def test_a_sandbox_reads_its_token_and_sees_only_its_own_processes(tmp_path):
    sock = tmp_path / "s.sock"
    sock.touch()
    code = (
        "import os; print(open('/run/darkroom/token').read(), "
        "sorted(p for p in os.listdir('/proc') if p.isdigit()), os.getcwd(), os.getuid())"
    )
    spec = sandbox.SandboxSpec(
        argv=[sys.executable, "-c", code], env={"PATH": "/usr/bin"}, token="tok", socket=sock,
        ro_paths=sandbox.runtime_paths([tmp_path]),
    )  # fmt: skip
    proc = sandbox.spawn(spec, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.decode().split() == ["tok", "['1',", "'2']", "/tmp/run", "65534"]


HOST_UID = """
import os
inside = os.getuid()
for line in open("/proc/self/uid_map"):
    first, outside, count = map(int, line.split())
    if first <= inside < first + count:
        print(outside + inside - first, os.getgid(), open("/given/f.txt").read(),
              open("/proc/self/status").read().split("CapEff:")[1].split()[0])
"""


def test_a_sandbox_of_root_is_not_root_on_the_host(tmp_path):
    """Finding A3: as root, bwrap's user namespace mapped the run's nobody to host uid 0, so an
    escape was root. The run is now an unprivileged host uid with no capability, and still gets
    what it is given from folders that uid cannot enter (a 0700 folder, as /root/.cache)."""
    if os.geteuid() != 0:
        pytest.skip("darkroom runs as this user's uid: there is no root to drop")
    private = tmp_path / "private"
    (private / "data").mkdir(parents=True)
    private.chmod(0o700)
    (private / "data" / "f.txt").write_text("given")
    spec = sandbox.SandboxSpec(
        argv=[sys.executable, "-c", HOST_UID], env={"PATH": "/usr/bin"}, token=None, socket=None,
        ro_paths=sandbox.runtime_paths([tmp_path]), mounts=[(private / "data", "/given")],
    )  # fmt: skip
    assert spec.user == sandbox.RunAs(65534, 65534)  # root has no /etc/subuid range here
    proc = sandbox.spawn(spec, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.decode().split() == ["65534", "65534", "given", "0000000000000000"]


def test_a_sandbox_of_another_user_runs_in_a_user_namespace(tmp_path):
    """Not root, darkroom's sandboxes are its own uid mapped to nobody: the arguments of that
    mode still make a sandbox (the suite runs as root, so this runs bwrap as another uid)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to start bwrap as another user")
    spec = sandbox.SandboxSpec(argv=["/bin/sh", "-c", "id -u; sleep 5"],
                               env={"PATH": "/usr/bin:/bin"}, token="t", socket=None,
                               user=None)  # fmt: skip
    fds = {}
    for dest in ("/etc/passwd", "/etc/group", sandbox.TOKEN_PATH):
        read, write = os.pipe()
        os.write(write, b"x\n")
        os.close(write)
        fds[dest] = read
    argv = sandbox.bwrap_command(sandbox.check_bwrap(), spec, fds)
    proc = subprocess.Popen(argv, pass_fds=tuple(fds.values()), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, user=12345, group=12345,
                            extra_groups=[])  # fmt: skip
    for fd in fds.values():
        os.close(fd)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"65534\n"
    sleeper: list[int] = []
    deadline = time.monotonic() + 10
    while not sleeper and time.monotonic() < deadline:  # sh starts sleep after id printed
        sleeper = [pid for pid in processes.descendants(proc.pid)
                   if processes.command_name(pid) == "sleep"]  # fmt: skip
    status = Path(f"/proc/{sleeper[0]}/status").read_text()
    assert status.split("Uid:")[1].split()[:2] == ["12345", "12345"]  # host uids
    proc.kill()
    proc.communicate(timeout=30)


def test_the_sandbox_uid_comes_from_roots_subordinate_range(tmp_path, monkeypatch):
    subuid, subgid = tmp_path / "subuid", tmp_path / "subgid"
    subuid.write_text("alice:100000:65536\nroot:231072:65536\n")
    subgid.write_text("root:300000:65536\n")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert sandbox.host_user(None, subuid, subgid) == sandbox.RunAs(231072, 300000)
    missing = tmp_path / "missing"
    assert sandbox.host_user(None, missing, missing) == sandbox.RunAs(65534, 65534)
    assert sandbox.host_user(1234) == sandbox.RunAs(1234, 1234)
    assert sandbox.host_user(0) is None  # root asked for: kept
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert sandbox.host_user(None) is None  # not root: sandboxes run as this uid
    with pytest.raises(sandbox.SandboxUnavailable, match="needs darkroom to run as root"):
        sandbox.host_user(1234)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2GiB", 2 * 1024**3), ("512MiB", 512 * 1024**2), ("1.5G", 1_500_000_000), (1024, 1024)],
)
def test_sizes(value, expected):
    assert parse_resources({"memory": value})["memory_bytes"] == expected


@pytest.mark.parametrize(
    ("resources", "field"),
    [({"memory": "lots"}, "memory"), ({"memory": True}, "memory"), ({"disk": -1}, "disk"),
     ({"network": "yes"}, "network"), ({"processes": 0}, "processes"), ({"swap": 1}, "swap"),
     ({"memory": "9" * 40}, "memory"), ({"gpus": -1}, "gpus")],
)  # fmt: skip
def test_bad_resources_name_the_field(resources, field):
    with pytest.raises(InvalidInput) as err:
        parse_resources(resources)
    assert err.value.details["loc"] == ["resources", field]


def test_defaults_are_overridden_by_what_a_processing_asks():
    limits = RunResources().merged({"memory": "1GiB", "network": True})
    assert (limits.memory_bytes, limits.network, limits.disk_bytes) == (1024**3, True, 1024**3)
    assert format_bytes(2 * 1024**3) == "2 GiB"
    assert format_bytes(1536 * 1024**2) == "1.5 GiB"


def test_a_home_that_holds_darkrooms_python_is_refused_at_start(tmp_path):
    """Hiding the home would hide the interpreter from runs: say so instead of failing them."""
    from darkroom.config import Settings

    assert Settings(home=tmp_path / "home").make_executor().check_available() is None
    with pytest.raises(sandbox.SandboxUnavailable, match="lies inside a folder runs must not see"):
        Settings(home=Path(sys.base_prefix)).make_executor().check_available()
