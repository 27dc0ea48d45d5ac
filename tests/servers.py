"""Real darkroom processes for tests: `darkroom serve` and `darkroom worker` subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.helpers import free_port

DARKROOM = str(Path(sys.executable).parent / "darkroom")
START_TIMEOUT_S = 60


@dataclass
class Server:
    url: str
    home: Path
    env: dict[str, str]
    process: subprocess.Popen[str]
    log: Path

    @property
    def instance(self) -> str:
        """The darkroom instance its runs' processes are named by (see `Settings.instance`)."""
        from darkroom.config import Settings

        return Settings(
            home=self.home, database_url=self.env.get("DARKROOM_DATABASE_URL") or None
        ).instance

    @property
    def token(self) -> str:
        return (self.home / "admin-token").read_text().strip()

    def output(self) -> str:
        """What the server printed; complete once it is stopped."""
        return self.log.read_text(errors="replace")


def start_server(
    home: Path,
    extra_env: dict[str, str] | None = None,
    *args: str,
    port: int | None = None,
    migrated: Path | None = None,
) -> Server:
    """A `darkroom serve` on `port` (a free one by default: a restart passes the old one).

    `migrated`: a migrated SQLite file copied in as the home's database when it has none, so the
    server skips the migrations (the first start is `tests/e2e/test_serve.py`'s subject)."""
    port = port or free_port()
    if migrated is not None and not (home / "darkroom.db").exists():
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(migrated, home / "darkroom.db")
    env = {
        **os.environ,
        "DARKROOM_HOME": str(home),
        "DARKROOM_URL": f"http://127.0.0.1:{port}",
        "NO_COLOR": "1",
        "COLUMNS": "200",
        **(extra_env or {}),
    }
    env.pop("DARKROOM_TOKEN", None)
    # A file, not a pipe: a busy server's access log would fill a pipe nobody reads and block it.
    home.parent.mkdir(parents=True, exist_ok=True)
    log = home.parent / f"serve-{port}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [DARKROOM, "serve", "--port", str(port), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"darkroom serve exited {proc.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return Server(url, home, env, proc, log)
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"darkroom serve did not answer in time: {log.read_text()}")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()


def start_worker(server: Server, extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """A `darkroom worker` on the server's database, whose runs call the server back."""
    env = {**server.env, **(extra_env or {})}
    with open(server.home.parent / f"worker-{time.monotonic_ns()}.log", "w") as log:
        return subprocess.Popen(
            [DARKROOM, "worker", "--server-url", server.url],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)
