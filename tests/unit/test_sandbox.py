"""The sandbox's command line and the resources a processing may ask for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from darkroom.domain.resources import RunResources, format_bytes, parse_resources
from darkroom.engine import sandbox
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
