"""`darkroom demo --no-serve` in a fresh home, as `make demo` runs it (but exiting)."""

from __future__ import annotations

import os
import re
import subprocess

import httpx

from tests.helpers import free_port
from tests.servers import DARKROOM, start_server, stop_server


def test_demo_pre_annotates_real_pages_with_the_real_model(tmp_path):
    home = tmp_path / "demo-home"
    env = {
        **os.environ,
        "NO_COLOR": "1",
        "COLUMNS": "200",
        "DARKROOM_CACHE": str(tmp_path / "cache"),
    }
    for key in (
        "DARKROOM_HOME",
        "DARKROOM_DATABASE_URL",
        "DARKROOM_STORAGE_URL",
        "DARKROOM_ADMIN_TOKEN",
    ):
        env.pop(key, None)
    args = ["--home", str(home), "--port", str(free_port()), "--pages", "6", "--no-serve"]
    proc = subprocess.run(
        [DARKROOM, "demo", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "5 of 11 classes map to the version's labels" in out
    assert "downloading model weights" in out  # through the run token, into the cache
    summary = re.search(r"run 1 succeeded in [\d.]+ s: (\d+)/(\d+) pages annotated", out)
    assert summary, out
    assert summary.groups() == ("6", "6")
    text_boxes = int(re.search(r"^\s+Text\s+(\d+)$", out, re.M).group(1))
    assert text_boxes >= 6
    assert (home / "darkroom.db").exists()


def test_demo_says_when_its_port_is_taken(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["--home", str(tmp_path / "h"), "--port", str(port), "--pages", "1", "--no-serve"]
        proc = subprocess.run(
            [DARKROOM, "demo", *args], capture_output=True, text=True, timeout=120
        )
    assert proc.returncode == 1
    assert f"port {port} on 127.0.0.1 is taken" in proc.stderr
    assert not (tmp_path / "h").exists()


def test_demo_never_empties_a_home_a_running_server_uses(tmp_path):
    home = tmp_path / "shared-home"
    server = start_server(home)
    try:
        args = ["--home", str(home), "--port", str(free_port()), "--pages", "1", "--no-serve"]
        proc = subprocess.run(
            [DARKROOM, "demo", *args], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 1
        assert "used by a running darkroom server" in proc.stderr
        assert (home / "darkroom.db").exists()
        assert (
            httpx.get(
                f"{server.url}/api/v1/datasets", headers={"Authorization": f"Bearer {server.token}"}
            ).status_code
            == 200
        )
    finally:
        stop_server(server)
