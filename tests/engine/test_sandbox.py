"""Run isolation, tried as an attacker would, through a real `darkroom serve` and its executor.

One processing tries every escape that worked before runs were sandboxed and reports each
attempt by name; every one must be denied, and the same run must still do its normal work.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from darkroom.client import Client
from tests.conftest import ADMIN_TOKEN
from tests.engine.conftest import (
    ENGINE_ENV,
    SLEEP_SCHEMA,
    SLEEPER,
    log_text,
    run_processes,
    wait_for,
)
from tests.helpers import free_port, image_bytes
from tests.servers import Server, start_server, stop_server

ATTACKER = r"""
import glob, json, os, socket, sqlite3, sys, time

def report(name, ok, detail=""):
    item = {"name": name, "succeeded": bool(ok), "detail": str(detail)[:200]}
    print("ATTACK " + json.dumps(item), flush=True)

def attempt(name, fn):
    try:
        ok, detail = fn()
    except Exception as exc:
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    report(name, ok, detail)

def run(ctx):
    p = ctx.parameters
    home, cache = p["home"], p["cache"]

    def environ_secrets():
        found = []
        for path in glob.glob("/proc/*/environ"):
            try:
                data = open(path, "rb").read()
            except OSError:
                continue
            for key in (b"DARKROOM_ADMIN_TOKEN=", b"DARKROOM_DATABASE_URL=",
                        b"DARKROOM_RUN_TOKEN=", p["admin_token"].encode()):
                if key in data:
                    found.append((path, key.decode()))
        return bool(found), found
    attempt("read_server_environment", environ_secrets)

    def other_processes():
        others = []
        for d in os.listdir("/proc"):
            if d.isdigit() and int(d) != os.getpid():
                argv = open(f"/proc/{d}/cmdline", "rb").read().split(b"\0")
                if not argv[0].endswith(b"bwrap"):  # the sandbox's own init
                    others.append(argv[:4])
        return bool(others), others
    attempt("see_other_processes", other_processes)

    attempt("read_admin_token_file", lambda: (True, open(os.path.join(home, "admin-token")).read()))

    def database():
        db = os.path.join(home, "darkroom.db")
        if not os.path.exists(db):
            return False, "no database file in sight"
        conn = sqlite3.connect(db)
        conn.execute("INSERT INTO api_tokens (user_id, name, token_hash) VALUES (1, 'x', 'y')")
        conn.commit()
        return True, "inserted a token row"
    attempt("write_database", database)

    def blobs():
        hits = glob.glob(os.path.join(home, "blobs", "**", "*"), recursive=True)
        files = [h for h in hits if os.path.isfile(h)]
        if not files:
            return False, "no blob in sight"
        with open(files[0], "r+b") as fp:
            fp.write(b"evil")
        return True, files[0]
    attempt("overwrite_blob", blobs)

    def linked_inputs():
        # hard links to the store's own files: writing one would change the blob for everyone
        folder = os.environ.get("DARKROOM_BLOBS")
        names = os.listdir(folder) if folder else []
        if not names:
            return False, "no linked input"
        try:
            with open(os.path.join(folder, names[0]), "r+b") as fp:
                fp.write(b"evil")
            return True, "overwrote a linked input image"
        except OSError:
            os.unlink(os.path.join(folder, names[0]))
            return True, "unlinked a linked input image"
    attempt("overwrite_linked_input", linked_inputs)

    def poison(root):
        def go():
            with open(os.path.join(root, "planted.pth"), "w") as fp:
                fp.write("import os\n")
            return True, root
        return go
    attempt("poison_cache_bundles", poison(os.path.join(cache, "bundles")))
    attempt("poison_cache_envs", poison(os.path.join(cache, "envs")))
    import darkroom
    site_packages = os.path.dirname(os.path.dirname(darkroom.__file__))
    attempt("poison_darkroom_environment", poison(site_packages))
    attempt("poison_interpreter", poison(os.path.dirname(os.__file__)))

    def connect(port):
        def go():
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                return True, f"connected to 127.0.0.1:{port}"
        return go
    attempt("connect_server_tcp", connect(p["server_port"]))
    attempt("connect_postgresql", connect(5432))
    attempt("connect_redis", connect(6379))

    def listen():
        s = socket.socket()
        s.bind(("0.0.0.0", p["listen_port"]))
        s.listen(1)
        print("LISTENING", flush=True)
        time.sleep(3)
        s.close()
        return False, "listening inside (checked from outside by the test)"
    attempt("listen", listen)

    def fill_disk():
        with open("big.bin", "wb") as fp:
            for _ in range(100):
                fp.write(b"\0" * (1024 * 1024))
        return True, "wrote 100 MiB"
    attempt("fill_disk", fill_disk)
    if os.path.exists("big.bin"):
        os.remove("big.bin")

    def fill(folder):
        def go():
            path = os.path.join(folder, "big.bin")
            try:
                with open(path, "wb") as fp:
                    for _ in range(100):
                        fp.write(b"\0" * (1024 * 1024))
            finally:
                if os.path.exists(path):
                    os.remove(path)
            return True, f"wrote 100 MiB in {folder}"
        return go
    for folder, name in (("/", "fill_root"), ("/dev", "fill_dev"), ("/dev/shm", "fill_dev_shm"),
                         ("/run", "fill_run")):
        attempt(name, fill(folder))

    def upload_input():
        ctx._client.upload_assets(ctx.input_version.id, [("evil.jpg", b"\xff\xd8\xff")])
        return True, "uploaded into the input version"
    attempt("upload_into_input_version", upload_input)

    def workdir():
        cwd = os.getcwd()
        return cwd != "/tmp/run" or bool(os.listdir(cwd)), (cwd, os.listdir(cwd))
    attempt("workdir_is_shared", workdir)

    def root_on_host():  # the uid an escape from this namespace would have on the host
        inside = os.getuid()
        for line in open("/proc/self/uid_map"):
            first, outside, count = map(int, line.split())
            if first <= inside < first + count:
                host = outside + inside - first
                return p["root"] and host == 0, f"uid {inside} is {host} outside"
        return False, f"uid {inside} is unmapped"
    attempt("root_on_host", root_on_host)

    # ... and the run still works normally
    stats = ctx._client.version_stats(ctx.input_version.id)
    print("WORKS", stats["assets"], flush=True)
"""

ATTACK_SCHEMA = {"type": "object", "properties": {
    "home": {"type": "string"}, "cache": {"type": "string"},
    "server_port": {"type": "integer"}, "listen_port": {"type": "integer"},
    "admin_token": {"type": "string"}, "root": {"type": "boolean"},
}}  # fmt: skip

ATTEMPTS = {
    "read_server_environment", "see_other_processes", "read_admin_token_file", "write_database",
    "overwrite_blob", "poison_cache_bundles", "poison_cache_envs", "poison_darkroom_environment",
    "poison_interpreter", "connect_server_tcp", "connect_postgresql", "connect_redis", "listen",
    "fill_disk", "upload_into_input_version", "workdir_is_shared", "overwrite_linked_input",
    "fill_root", "fill_dev", "fill_dev_shm", "fill_run", "root_on_host",
}  # fmt: skip


@pytest.fixture(params=["sqlite", "standby", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """`standby`: the attacker gets the sandbox its executor started ahead (default limits,
    the disk limit made small for every run instead of asked for by the attacker)."""
    env = {**ENGINE_ENV, "DARKROOM_ADMIN_TOKEN": ADMIN_TOKEN,
           "DARKROOM_CACHE": str(tmp_path / "cache")}  # fmt: skip
    if request.param == "standby":
        env["DARKROOM_RUN_DISK"] = "64MiB"
    if request.param == "postgres":
        env["DARKROOM_DATABASE_URL"] = request.getfixturevalue("pg_database")
        from tests.conftest import _truncate_all

        _truncate_all(env["DARKROOM_DATABASE_URL"])
    srv = start_server(tmp_path / "home", env)
    yield srv
    stop_server(srv)
    sys.stdout.write(srv.output())


def _attacks(text: str) -> dict[str, dict[str, Any]]:
    found = {}
    for line in text.splitlines():
        if line.startswith("ATTACK "):
            item = json.loads(line[len("ATTACK ") :])
            found[item["name"]] = item
    return found


def test_every_escape_is_denied_and_the_run_still_works(
    server: Server, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with Client(server.url, ADMIN_TOKEN) as dr:
        _attack(dr, server, tmp_path, standby="standby" in request.node.callspec.id)


def _attack(dr: Client, server: Server, tmp_path: Path, standby: bool = False) -> None:
    ds = dr.create_dataset("victim-data")
    v = dr.create_version(ds["id"], "v1")
    dr.upload_assets(v["id"], [(f"{i}.jpg", image_bytes(seed=i)) for i in range(3)])
    before = dr.version_stats(v["id"])["assets"]
    dr.create_processing(name="sleeper", type="custom", parameters_schema=SLEEP_SCHEMA,
                         source={"kind": "inline", "code": SLEEPER})  # fmt: skip
    dr.create_processing(
        name="attacker", type="custom", source={"kind": "inline", "code": ATTACKER},
        parameters_schema=ATTACK_SCHEMA, resources={} if standby else {"disk": "64MiB"},
    )  # fmt: skip
    victim = dr.launch_job("sleeper", v["id"], parameters={"seconds": 30})
    wait_for(lambda: log_text(dr, victim["runs"][0]["id"]), lambda t: "pid" in t)
    if standby:  # a run that ends starts (before it is marked ended) the standby to attack from
        quick = dr.launch_job("sleeper", v["id"], parameters={"seconds": 0})
        wait_for(lambda: dr.get_run(quick["runs"][0]["id"]), lambda r: r["status"] == "succeeded")
    listen_port = free_port()
    job = dr.launch_job("attacker", v["id"], parameters={
        "home": str(server.home), "cache": str(tmp_path / "cache"),
        "server_port": int(server.url.rsplit(":", 1)[1]), "listen_port": listen_port,
        "admin_token": ADMIN_TOKEN, "root": os.geteuid() == 0,
    })  # fmt: skip
    run_id = job["runs"][0]["id"]
    wait_for(lambda: log_text(dr, run_id), lambda t: "LISTENING" in t, timeout_s=60)
    with pytest.raises(ConnectionRefusedError):  # what it listens on is not reachable from the host
        socket.create_connection(("127.0.0.1", listen_port), timeout=1).close()
    run = wait_for(lambda: dr.get_run(run_id), lambda r: r["status"] not in ("pending", "running"),
                   timeout_s=60)  # fmt: skip
    text = log_text(dr, run_id)
    assert run["status"] == "succeeded", text
    assert ("started in a standby sandbox" in text) == standby, text
    attacks = _attacks(text)
    assert set(attacks) == ATTEMPTS, text
    succeeded = {name: a["detail"] for name, a in attacks.items() if a["succeeded"]}
    assert succeeded == {}
    assert "No space left on device" in attacks["fill_disk"]["detail"]
    assert "No space left on device" in attacks["fill_dev_shm"]["detail"]
    for name in ("fill_root", "fill_dev", "fill_run"):
        assert "Read-only file system" in attacks[name]["detail"], attacks[name]
    assert "403" in attacks["upload_into_input_version"]["detail"]
    assert "Read-only file system" in attacks["overwrite_linked_input"]["detail"]
    for asset in dr.iter_assets(v["id"]):  # the store's files are intact
        assert hashlib.sha256(dr.download_image(asset["id"])).hexdigest() == asset["blob_sha256"]
    assert f"WORKS {before}" in text
    assert list((tmp_path / "cache").rglob("planted.pth")) == []
    # nothing changed behind the server's back
    assert dr.version_stats(v["id"])["assets"] == before
    assert dr.health()["status"] == "ok"
    dr.cancel_run(victim["runs"][0]["id"])


MEMORY_HOG = """
def run(ctx):
    hog = []
    for _ in range(64):
        hog.append(bytearray(64 * 1024 * 1024))
    print("allocated", len(hog) * 64, "MiB")
"""


def test_a_memory_hog_fails_with_its_limit_named(dr: Client, version: dict) -> None:
    dr.create_processing(name="hog", type="custom", source={"kind": "inline", "code": MEMORY_HOG},
                         resources={"memory": "512MiB"})  # fmt: skip
    run_id = dr.launch_job("hog", version["id"])["runs"][0]["id"]
    run = wait_for(lambda: dr.get_run(run_id), lambda r: r["status"] not in ("pending", "running"))
    assert run["status"] == "failed"
    assert run["error_summary"].startswith("exceeded its memory limit of 512 MiB"), run
    assert "allocated" not in log_text(dr, run_id)


SHARED_HOG = """
import mmap

def run(ctx):
    maps = []
    for _ in range(24):  # 1.5 GiB of shared memory: RLIMIT_DATA does not count it
        m = mmap.mmap(-1, 64 * 1024 * 1024, flags=mmap.MAP_SHARED)
        for offset in range(0, len(m), 4096):
            m[offset] = 1
        maps.append(m)
    print("touched", len(maps) * 64, "MiB", flush=True)
"""
CHILDREN_HOG = """
import os

def run(ctx):
    children = []
    for _ in range(4):  # 4 x 400 MiB: each child under RLIMIT_DATA, the run far over
        pid = os.fork()
        if pid == 0:
            hog = bytearray(400 * 1024 * 1024)
            for offset in range(0, len(hog), 4096):
                hog[offset] = 1
            os._exit(0)
        children.append(pid)
    codes = [os.waitpid(pid, 0)[1] for pid in children]
    print("children done", codes, flush=True)
"""


@pytest.mark.parametrize("code", [SHARED_HOG, CHILDREN_HOG], ids=["mmap-shared", "children"])
def test_memory_is_limited_for_the_run_as_a_whole(dr: Client, version: dict, code: str) -> None:
    """Findings A1: a run limited to 512 MiB touched 1.5 GiB through shared maps and children."""
    from darkroom.engine.cgroups import RunCgroups

    if not RunCgroups().memory_available:
        pytest.skip("no writable cgroup memory hierarchy here: only RLIMIT_DATA applies")
    dr.create_processing(name="sharer", type="custom", source={"kind": "inline", "code": code},
                         resources={"memory": "512MiB"})  # fmt: skip
    run_id = dr.launch_job("sharer", version["id"])["runs"][0]["id"]
    run = wait_for(lambda: dr.get_run(run_id), lambda r: r["finished_at"] is not None, 60)
    log = log_text(dr, run_id)
    assert run["status"] == "failed", log
    assert run["failure_reason"] == "memory", run
    assert run["error_summary"].startswith("exceeded its memory limit of 512 MiB"), run
    assert "touched" not in log
    assert "children done" not in log


DAEMON = """
import os, time

def run(ctx):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            while True:
                time.sleep(0.2)
        os._exit(0)
    print("daemon started", flush=True)
    time.sleep(60)
"""


def test_cancel_kills_daemons_the_run_started(
    engine_server: Server, dr: Client, version: dict
) -> None:
    dr.create_processing(name="daemon", type="custom", source={"kind": "inline", "code": DAEMON})
    run_id = dr.launch_job("daemon", version["id"])["runs"][0]["id"]
    wait_for(lambda: log_text(dr, run_id), lambda t: "daemon started" in t)
    pids = run_processes(run_id, engine_server.instance)
    assert len(pids) >= 3  # bwrap, the runtime, the daemon (at least)
    dr.cancel_run(run_id)
    run = wait_for(lambda: dr.get_run(run_id), lambda r: r["status"] == "cancelled")
    assert run["status"] == "cancelled"
    deadline = time.monotonic() + 5
    while [p for p in pids if os.path.exists(f"/proc/{p}")] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in pids if os.path.exists(f"/proc/{p}")] == []
    assert run_processes(run_id, engine_server.instance) == []


def test_a_run_token_cannot_write_into_its_input_version(dr: Client, version: dict) -> None:
    """Outside the sandbox too: the API refuses, whoever holds the token."""
    code = "def run(ctx):\n    ctx._client.upload_assets(ctx.input_version.id, [('x.jpg', b'1')])\n"
    dr.create_processing(name="writer", type="custom", source={"kind": "inline", "code": code})
    run_id = dr.launch_job("writer", version["id"])["runs"][0]["id"]
    run = wait_for(lambda: dr.get_run(run_id), lambda r: r["status"] not in ("pending", "running"))
    assert run["status"] == "failed"
    assert "HTTP 403" in run["error_summary"], run
    assert dr.version_stats(version["id"])["assets"] == 5


SPINNER = """
def run(ctx):
    n = 0
    while True:
        n += 1
"""


def test_a_cpu_hog_fails_with_its_cpu_time_limit_named(dr: Client, version: dict) -> None:
    dr.create_processing(name="spin", type="custom", source={"kind": "inline", "code": SPINNER},
                         resources={"cpu_time_s": 1})  # fmt: skip
    run_id = dr.launch_job("spin", version["id"])["runs"][0]["id"]
    run = wait_for(lambda: dr.get_run(run_id), lambda r: r["status"] not in ("pending", "running"))
    assert run["status"] == "failed"
    assert run["error_summary"] == "exceeded its CPU time limit of 1 s", run


def test_resources_are_checked_when_a_processing_is_saved(dr: Client) -> None:
    from darkroom.client import ApiError

    with pytest.raises(ApiError) as err:
        dr.create_processing(name="greedy", type="custom", resources={"memory": "lots"},
                             source={"kind": "inline", "code": SPINNER})  # fmt: skip
    assert err.value.status == 422
    assert err.value.details["loc"] == ["resources", "memory"]


CONNECT = """
import socket

def run(ctx):
    with socket.create_connection(("127.0.0.1", ctx.parameters["port"]), timeout=2):
        print("connected", flush=True)
"""


def test_network_true_gives_a_run_the_network(dr: Client, version: dict, engine_server) -> None:
    port = int(engine_server.url.rsplit(":", 1)[1])
    schema = {"type": "object", "properties": {"port": {"type": "integer"}}}
    for name, network in (("offline", False), ("online", True)):
        dr.create_processing(name=name, type="custom", parameters_schema=schema,
                             source={"kind": "inline", "code": CONNECT},
                             resources={"network": network})  # fmt: skip
    outcomes = {}
    for name in ("offline", "online"):
        run_id = dr.launch_job(name, version["id"], parameters={"port": port})["runs"][0]["id"]
        run = wait_for(lambda r=run_id: dr.get_run(r), lambda r: r["finished_at"] is not None)
        outcomes[name] = run["status"]
    assert outcomes == {"offline": "failed", "online": "succeeded"}


FORKER = """
import os, time

def run(ctx):
    children = []
    for _ in range(100):
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        children.append(pid)
    print("forked", len(children), flush=True)
"""


def test_a_fork_bomb_fails_with_its_process_limit_named(
    engine_server: Server, dr: Client, version: dict
) -> None:
    from darkroom.engine.cgroups import RunCgroups

    if not RunCgroups().pids_available:
        pytest.skip("no writable cgroup pids hierarchy here: the limit is not enforced")
    dr.create_processing(name="forker", type="custom", source={"kind": "inline", "code": FORKER},
                         resources={"processes": 20})  # fmt: skip
    run_id = dr.launch_job("forker", version["id"])["runs"][0]["id"]
    run = wait_for(lambda: dr.get_run(run_id), lambda r: r["finished_at"] is not None)
    assert run["status"] == "failed"
    assert run["error_summary"] == "exceeded its process limit of 20", run
    assert "forked" not in log_text(dr, run_id)
    assert run_processes(run_id, engine_server.instance) == []
