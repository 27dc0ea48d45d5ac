"""Schemathesis over the whole OpenAPI of a real server: no input may make it answer 5xx.

Bounded examples and a fixed seed keep the run repeatable and a few tens of seconds long; ids
that overflow 64 bits, strings with NUL bytes, deep JSON and odd types all get a 4xx.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from darkroom.client import Client
from tests.conftest import ADMIN_TOKEN
from tests.helpers import image_bytes
from tests.servers import Server, start_server, stop_server

ST = str(Path(sys.executable).parent / "st")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def seeded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    env = {"DARKROOM_ADMIN_TOKEN": ADMIN_TOKEN, "DARKROOM_CACHE": str(tmp_path / "cache"),
           "DARKROOM_SANDBOX": "none"}  # fmt: skip
    if request.param == "postgres":
        from tests.conftest import _truncate_all

        env["DARKROOM_DATABASE_URL"] = request.getfixturevalue("pg_database")
        _truncate_all(env["DARKROOM_DATABASE_URL"])
    server = start_server(tmp_path / "home", env, "--no-scheduler")
    with Client(server.url, ADMIN_TOKEN) as dr:  # something for ids 1 to find
        v = dr.create_version(dr.create_dataset("d")["id"], "v1")
        dr.create_label(v["id"], "cat")
        dr.upload_assets(v["id"], [("a.jpg", image_bytes())])
    yield server
    stop_server(server)


def test_no_input_makes_the_server_answer_5xx(seeded: Server, tmp_path: Path) -> None:
    assert shutil.which(ST), "schemathesis is a dev dependency"
    proc = subprocess.run(
        [ST, "run", f"{seeded.url}/api/v1/openapi.json", "--checks", "not_a_server_error",
         "--max-examples", "5", "--seed", "1", "--phases", "coverage,fuzzing", "--workers", "1",
         "--header", f"Authorization: Bearer {ADMIN_TOKEN}", "--no-color",
         "--request-timeout", "20",
         # a log stream stays open while its run is active, and runs here never start
         "--exclude-path-regex", "/logs/stream$"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert " passed" in proc.stdout
