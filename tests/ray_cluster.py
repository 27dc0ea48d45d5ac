"""A local Ray head for tests: every port explicit (its GCS defaults to 6379, which this
machine's Redis holds), its own temp dir, and stopped by its own processes only (`ray stop`
would stop every Ray on the host)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PORTS = ("port", "dashboard-port", "ray-client-server-port", "node-manager-port",
         "object-manager-port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
         "metrics-export-port", "runtime-env-agent-port")  # fmt: skip


@dataclass
class RayHead:
    temp_dir: Path
    ports: dict[str, int]
    started_s: float = 0.0
    sessions: set[int] = field(default_factory=set)
    serve_port: int = field(default_factory=lambda: _free_ports(1)[0])  # Serve's HTTP proxy

    @property
    def address(self) -> str:
        """The dashboard: the Jobs API the Ray executor submits to."""
        return f"http://127.0.0.1:{self.ports['dashboard-port']}"

    @property
    def serve_url(self) -> str:
        return f"http://127.0.0.1:{self.serve_port}"


def _free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _worker_ports(taken: set[int], count: int = 200) -> int:
    """The first of `count` + 1 worker ports clear of the head's own: Ray refuses to start when
    its worker range holds one of them (a restart on the old ports met that 1 time in ~15)."""
    while True:
        first = _free_ports(1)[0]
        if first + count < 65536 and not any(first <= p <= first + count for p in taken):
            return first


def start_head(temp_dir: Path, ports: dict[str, int] | None = None, num_cpus: int = 2) -> RayHead:
    """`ray start --head` (a restart passes the old head's ports: same address)."""
    ports = ports or dict(zip(PORTS, _free_ports(len(PORTS)), strict=True))
    temp_dir.mkdir(parents=True, exist_ok=True)
    workers = _worker_ports(set(ports.values()))
    cmd = [str(Path(sys.executable).with_name("ray")), "start", "--head",
           "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1",
           *(f"--{name}={port}" for name, port in ports.items()),
           f"--min-worker-port={workers}", f"--max-worker-port={workers + 200}",
           f"--temp-dir={temp_dir}", f"--num-cpus={num_cpus}", "--num-gpus=0",
           "--include-dashboard=true", "--disable-usage-stats"]  # fmt: skip
    started = time.monotonic()
    # The nodes' cache (weights, environments) is the head's own: what a node fetched
    # from a server is what that test's server gave.
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "DARKROOM_CACHE": str(temp_dir / "cache")}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180,
                          start_new_session=True)  # fmt: skip
    head = RayHead(temp_dir, ports, time.monotonic() - started)
    head.sessions = _sessions_of(head)
    if done.returncode != 0:  # what did start (the GCS, say) must not outlive the test
        stop_head(head)
        raise RuntimeError(f"ray start failed: {done.stdout}\n{done.stderr}")
    return head


def _sessions_of(head: RayHead) -> set[int]:
    """Sessions of the processes whose command line names the head's temp dir."""
    mark = str(head.temp_dir).encode()
    found = set()
    for _pid, cmdline, sid in _processes():
        if mark in cmdline:
            found.add(sid)
    return found


def _processes() -> list[tuple[int, bytes, int]]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            stat = Path(f"/proc/{entry}/stat").read_text()
            out.append((int(entry), cmdline, int(stat.rsplit(")", 1)[1].split()[3])))
    return out


def stop_head(head: RayHead) -> list[int]:
    """SIGKILLs every process of the head's sessions (GCS, raylet, dashboard, workers, jobs)."""
    sessions = head.sessions | _sessions_of(head)
    killed = [pid for pid, _, sid in _processes() if sid in sessions and pid != os.getpid()]
    for pid in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return killed
