"""`darkroom serve`: first start, admin token, migrations, limits, interrupted uploads."""

from __future__ import annotations

import socket
import stat
from urllib.parse import urlparse

import httpx

from tests.helpers import image_bytes
from tests.servers import start_server, stop_server


def test_first_start_writes_private_admin_token_once(tmp_path):
    home = tmp_path / "home"
    srv = start_server(home)
    token = srv.token
    stop_server(srv)
    out = srv.output()
    assert f"admin token written to {home / 'admin-token'}" in out
    assert stat.S_IMODE((home / "admin-token").stat().st_mode) == 0o600
    assert (home / "darkroom.db").exists()

    again = start_server(home)
    try:
        assert again.token == token
        r = httpx.get(f"{again.url}/api/v1/datasets", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
    finally:
        stop_server(again)


def test_admin_token_from_environment(tmp_path):
    srv = start_server(tmp_path / "home", {"DARKROOM_ADMIN_TOKEN": "drk_fixed"})
    try:
        r = httpx.get(f"{srv.url}/api/v1/datasets", headers={"Authorization": "Bearer drk_fixed"})
        assert r.status_code == 200
        assert not (tmp_path / "home" / "admin-token").exists()
    finally:
        stop_server(srv)


def test_no_migrate_refuses_an_old_schema(tmp_path):
    import subprocess

    from tests.servers import DARKROOM

    env = {"DARKROOM_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [DARKROOM, "serve", "--no-migrate", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "start without --no-migrate" in proc.stderr


def test_body_over_limit_is_413(tmp_path):
    srv = start_server(tmp_path / "home", {"DARKROOM_MAX_UPLOAD_BYTES": "100000"})
    try:
        h = {"Authorization": f"Bearer {srv.token}"}
        ds = httpx.post(f"{srv.url}/api/v1/datasets", json={"name": "d"}, headers=h).json()
        v = httpx.post(
            f"{srv.url}/api/v1/datasets/{ds['id']}/versions", json={"name": "v"}, headers=h
        ).json()
        big = image_bytes(800, 800, "PNG") + b"\0" * 200_000
        r = httpx.post(
            f"{srv.url}/api/v1/versions/{v['id']}/assets",
            files=[("files", ("big.png", big, "image/png"))],
            headers=h,
        )
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "payload_too_large"
    finally:
        stop_server(srv)


def test_interrupted_upload_leaves_nothing(server):
    h = {"Authorization": f"Bearer {server.token}"}
    ds = httpx.post(f"{server.url}/api/v1/datasets", json={"name": "d"}, headers=h).json()
    v = httpx.post(
        f"{server.url}/api/v1/datasets/{ds['id']}/versions", json={"name": "v"}, headers=h
    ).json()

    boundary = "darkroomboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    body = image_bytes(2000, 2000)
    total = len(head) + len(body) + len(f"\r\n--{boundary}--\r\n")
    request = (
        f"POST /api/v1/versions/{v['id']}/assets HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {server.token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {total}\r\n\r\n"
    ).encode()
    addr = urlparse(server.url)
    with socket.create_connection((addr.hostname, addr.port)) as sock:
        sock.sendall(request + head + body[: len(body) // 2])
    # the server saw the client go away half-way: nothing may point at a missing blob
    r = httpx.get(f"{server.url}/api/v1/versions/{v['id']}/assets", headers=h)
    assert r.json()["items"] == []
    blobs = server.home / "blobs"
    stored = [p for p in blobs.rglob("*") if p.is_file() and ".tmp" not in p.parts]
    assert stored == []
    # and the server still works
    ok = httpx.post(
        f"{server.url}/api/v1/versions/{v['id']}/assets",
        files=[("files", ("b.jpg", image_bytes(), "image/jpeg"))],
        headers=h,
    )
    assert ok.status_code == 201


def test_a_hundred_concurrent_writers_on_sqlite_all_succeed(tmp_path):
    """They queue for SQLite's one writer without holding worker threads: no 500, no stall."""
    import asyncio
    import time
    from concurrent.futures import ThreadPoolExecutor

    srv = start_server(tmp_path / "home", {"DARKROOM_ADMIN_TOKEN": "drk_fixed"})
    try:

        async def write_all() -> list[tuple[int, float]]:
            headers = {"Authorization": "Bearer drk_fixed"}
            limits = httpx.Limits(max_connections=100)
            async with httpx.AsyncClient(base_url=srv.url, headers=headers, timeout=60,
                                         limits=limits) as client:  # fmt: skip

                async def one(i: int) -> tuple[int, float]:
                    start = time.monotonic()
                    r = await client.post("/api/v1/datasets", json={"name": f"w{i}"})
                    return r.status_code, time.monotonic() - start

                return await asyncio.gather(*(one(i) for i in range(100)))

        # in a thread of its own: the browser tests leave an event loop in the main thread
        with ThreadPoolExecutor(1) as pool:
            results = pool.submit(asyncio.run, write_all()).result()
    finally:
        stop_server(srv)
    assert [code for code, _ in results] == [201] * 100
    assert max(took for _, took in results) < 20


def test_serve_refuses_to_start_without_bwrap_and_says_how_to_install_it(tmp_path):
    import os
    import subprocess

    from tests.servers import DARKROOM

    env = {**os.environ, "DARKROOM_HOME": str(tmp_path / "home"), "PATH": str(tmp_path)}
    proc = subprocess.run([DARKROOM, "serve", "--port", "1"], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode != 0
    assert "apt-get install bubblewrap" in proc.stderr + proc.stdout
    assert "DARKROOM_SANDBOX=none" in proc.stderr + proc.stdout


def test_keep_alive_requests_do_not_wait_for_delayed_acks(server):
    """The bug: serve's own listening socket lacked IPPROTO_TCP, asyncio then left Nagle on,
    and every request on a kept-alive connection took 40 ms or more."""
    import time

    with httpx.Client(base_url=server.url) as http:
        http.get("/api/v1/health")
        took = []
        for _ in range(20):
            start = time.perf_counter()
            assert http.get("/api/v1/health").status_code == 200
            took.append(time.perf_counter() - start)
    assert min(took) < 0.02, sorted(took)[:5]


def test_serve_says_when_its_port_is_taken(tmp_path):
    import os
    import subprocess

    from tests.servers import DARKROOM

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = {**os.environ, "DARKROOM_HOME": str(tmp_path / "home")}
        proc = subprocess.run([DARKROOM, "serve", "--port", str(port)], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr


def test_a_killed_servers_socket_folder_is_removed_by_the_next_start(tmp_path):
    """`kill -9` skips the server's cleanup: its runs' socket folder stayed in the temp dir
    for good. The next `darkroom serve` removes folders whose server is gone."""
    import os
    import signal
    import tempfile
    from pathlib import Path

    first = start_server(tmp_path / "home")
    pid = first.process.pid
    [left] = Path(tempfile.gettempdir()).glob(f"darkroom-serve-{pid}-*")
    assert (left / "server.sock").exists()
    os.killpg(pid, signal.SIGKILL)
    first.process.wait()
    assert left.exists()
    second = start_server(tmp_path / "home")
    try:
        assert not left.exists()
        assert list(Path(tempfile.gettempdir()).glob(f"darkroom-serve-{second.process.pid}-*"))
    finally:
        stop_server(second)
