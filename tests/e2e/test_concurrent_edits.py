"""Concurrent edits of one processing on PostgreSQL: each succeeds or gets a 409, never a 500,
and revision numbers stay unique and gapless."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.servers import start_server, stop_server
from tests.unit.test_bundles import MAIN, tar_gz

CODE = "def run(ctx):\n    print({n})\n"


@pytest.mark.postgres
def test_concurrent_edits_and_first_pushes(tmp_path: Path, pg_database: str) -> None:
    from tests.conftest import _truncate_all

    _truncate_all(pg_database)
    env = {"DARKROOM_DATABASE_URL": pg_database, "DARKROOM_ADMIN_TOKEN": ADMIN_TOKEN}
    srv = start_server(tmp_path / "home", env, "--no-scheduler")
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        with httpx.Client(base_url=f"{srv.url}/api/v1", headers=headers, timeout=60) as api:
            api.post("/processings", json={"name": "p", "type": "custom", "source": {
                "kind": "inline", "code": CODE.format(n=0)}}).raise_for_status()  # fmt: skip

            def edit(n: int) -> int:
                source = {"kind": "inline", "code": CODE.format(n=n)}
                return api.patch("/processings/p", json={"source": source}).status_code

            def push(n: int) -> int:
                files = {"darkroom.yaml": b"name: pushed\ntype: custom\nentrypoint: main:run\n",
                         "main.py": MAIN + f"# {n}\n".encode()}  # fmt: skip
                archive = {"bundle": ("b.tar.gz", tar_gz(files))}
                return api.post("/processings/push", files=archive).status_code

            with ThreadPoolExecutor(8) as pool:
                edits = list(pool.map(edit, range(1, 25)))
                pushes = list(pool.map(push, range(8)))
            revisions = api.get("/processings/p/revisions").json()["items"]
            pushed = api.get("/processings/pushed/revisions").json()["items"]
    finally:
        stop_server(srv)
    assert set(edits) <= {200, 409}, edits
    assert set(pushes) <= {200, 201, 409}, pushes
    numbers = sorted(r["number"] for r in revisions)
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(numbers) == 1 + edits.count(200)
    assert sorted(r["number"] for r in pushed) == list(range(1, len(pushed) + 1))
