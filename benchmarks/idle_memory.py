"""Idle `darkroom serve` memory (goal: < 200 MB RSS).

Starts a real server on a fresh home, waits until it answers and settles, and reads its RSS.
Baseline in the same run: a bare FastAPI app under uvicorn (`python -c` with one route), the floor
of any server on this stack.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _common import served, write_result

BARE = """
import uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.get("/health")
def health():
    return {"status": "ok"}
uvicorn.run(app, host="127.0.0.1", port=%d, log_level="warning")
"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def server_pid(port: int) -> int:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "darkroom" in line and "serve" in line and f"--port {port}" in line:
            return int(line.split()[0])
    raise RuntimeError("server process not found")


def bare_rss() -> float:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", BARE % port], start_new_session=True)
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/health")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        time.sleep(2)
        return rss_mb(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmpdir, served(Path(tmpdir)) as (url, _):
        time.sleep(3)  # scheduler ticking, nothing to do
        ours = rss_mb(server_pid(int(url.rsplit(":", 1)[1])))
    bare = bare_rss()
    result = {"darkroom_idle_rss_mb": round(ours, 1), "bare_fastapi_rss_mb": round(bare, 1),
              "ratio": round(ours / bare, 2), "goal_mb": 200}  # fmt: skip
    path = write_result("idle_memory", result)
    print(
        f"idle_memory: darkroom serve {ours:.0f} MB RSS idle vs bare FastAPI+uvicorn {bare:.0f} MB "
        f"(x{ours / bare:.2f}; goal < 200 MB) -> {path}"
    )


if __name__ == "__main__":
    main()
