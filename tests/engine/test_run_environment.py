"""A run gets the server's environment without its secrets: its run token is all it acts with."""

from __future__ import annotations

from pathlib import Path

from darkroom.client import Client
from darkroom.engine.run_environment import run_environment
from tests.engine.conftest import ENGINE_ENV, wait_for
from tests.servers import start_server, stop_server

SHOW_ENV = """
import os

def run(ctx):
    names = sorted(k for k in os.environ if k.startswith(("DARKROOM", "AWS")))
    print("ENV " + " ".join(names), flush=True)
"""


def test_run_environment_drops_secrets():
    server_env = {
        "PATH": "/usr/bin", "DARKROOM_ADMIN_TOKEN": "drk_admin", "DARKROOM_TOKEN": "drk_user",
        "DARKROOM_DATABASE_URL": "postgresql://u:secret@db/x", "DARKROOM_CACHE": "/cache",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t", "AWS_DEFAULT_REGION": "eu-west-1",
    }  # fmt: skip
    assert run_environment(server_env) == {
        "PATH": "/usr/bin", "DARKROOM_CACHE": "/cache", "AWS_DEFAULT_REGION": "eu-west-1",
    }  # fmt: skip


def test_a_processing_does_not_see_the_servers_secrets(tmp_path: Path):
    secrets = {"DARKROOM_ADMIN_TOKEN": "drk_admin_secret_for_test",
               "AWS_SECRET_ACCESS_KEY": "not-for-processings"}  # fmt: skip
    srv = start_server(tmp_path / "home", {**ENGINE_ENV, **secrets})
    try:
        with Client(srv.url, "drk_admin_secret_for_test") as dr:
            v = dr.create_version(dr.create_dataset("d")["id"], "v1")
            dr.create_processing(name="env", type="custom",
                                 source={"kind": "inline", "code": SHOW_ENV})  # fmt: skip
            job = dr.launch_job("env", v["id"])
            wait_for(lambda: dr.get_job(job["id"]), lambda j: j["status"] == "succeeded")
            line = next(x["text"] for x in dr.run_logs(job["runs"][0]["id"])["items"]
                        if x["text"].startswith("ENV "))  # fmt: skip
    finally:
        stop_server(srv)
    names = set(line.split()[1:])
    assert {
        "DARKROOM_URL",
        "DARKROOM_SOCKET",
        "DARKROOM_RUN_TOKEN_FILE",
        "DARKROOM_RUN_ID",
    } <= names
    # the token is read from a file: no process environment holds it
    assert not names & {"DARKROOM_ADMIN_TOKEN", "DARKROOM_HOME", "AWS_SECRET_ACCESS_KEY",
                        "DARKROOM_RUN_TOKEN", "DARKROOM_DATABASE_URL"}  # fmt: skip
