"""Assets list at 1,000,000 assets: first page and a deep page, SQLite and PostgreSQL.

Goal: < 100 ms per page through the API. Baseline in the same run: the same keyset query
run bare through SQLAlchemy Core, so the ratio shows what the API layer adds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))
from _common import darkroom, database, p50, timed, write_result

SHA = "0" * 64
REPEAT = 30
PAGE = 50


def fill(engine, version_id: int, n: int) -> None:
    """Inserts n asset rows in SQL (the bytes do not matter to a list)."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO blobs (sha256, size, mime, created_at) VALUES (:s, 1, 'image/jpeg', :now)"
            ),
            {"s": SHA, "now": now},
        )
        if engine.dialect.name == "postgresql":
            source = "generate_series(1, :n) AS c(x)"
            prefix = ""
        else:
            source = "c"
            prefix = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :n) "
        conn.execute(
            text(
                prefix
                + "INSERT INTO assets (version_id, blob_sha256, filename, mime, width, height, "
                "metadata, created_at) SELECT :v, :s, 'img_' || x || '.jpg', 'image/jpeg', 64, 64, "
                f"'{{}}', :now FROM {source}"
            ),
            {"n": n, "v": version_id, "s": SHA, "now": now},
        )
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assets", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        with database(args.backend, tmp) as url, darkroom(url, tmp) as (app, api):
            ds = api.post("/api/v1/datasets", json={"name": "big"}).json()
            other = api.post(f"/api/v1/datasets/{ds['id']}/versions", json={"name": "other"}).json()
            v = api.post(f"/api/v1/datasets/{ds['id']}/versions", json={"name": "v"}).json()
            engine = app.state.engine
            fill(engine, v["id"], args.assets)
            with engine.begin() as conn:  # a neighbour version, so the index has to discriminate
                conn.execute(
                    text(
                        "INSERT INTO assets (version_id, blob_sha256, filename, mime, width, height, "
                        "metadata, created_at) SELECT :o, blob_sha256, filename, mime, width, height, "
                        "metadata, created_at FROM assets WHERE version_id = :v AND id % 10 = 0"
                    ),
                    {"o": other["id"], "v": v["id"]},
                )
            with engine.connect() as conn:
                ids = conn.execute(
                    text("SELECT min(id), max(id) FROM assets WHERE version_id = :v"),
                    {"v": v["id"]},
                ).one()
            deep_after = ids[0] + int(args.assets * 0.9)
            path = f"/api/v1/versions/{v['id']}/assets"

            def first() -> None:
                r = api.get(path, params={"limit": PAGE})
                assert len(r.json()["items"]) == PAGE

            def deep() -> None:
                r = api.get(path, params={"limit": PAGE, "after": deep_after})
                assert r.json()["items"][0]["id"] == deep_after + 1

            bare_sql = text(
                "SELECT * FROM assets WHERE version_id = :v AND id > :a ORDER BY id LIMIT :l"
            )

            def bare(after: int) -> None:
                with engine.connect() as conn:
                    assert (
                        len(conn.execute(bare_sql, {"v": v["id"], "a": after, "l": PAGE + 1}).all())
                        == PAGE + 1
                    )

            api_first, api_deep = timed(first, REPEAT), timed(deep, REPEAT)
            sql_first, sql_deep = (
                timed(lambda: bare(0), REPEAT),
                timed(lambda: bare(deep_after), REPEAT),
            )

    result = {
        "backend": args.backend,
        "assets": args.assets,
        "page": PAGE,
        "api_first_p50_ms": round(p50(api_first), 2),
        "api_deep_p50_ms": round(p50(api_deep), 2),
        "api_first_max_ms": round(max(api_first), 2),
        "api_deep_max_ms": round(max(api_deep), 2),
        "bare_sql_first_p50_ms": round(p50(sql_first), 2),
        "bare_sql_deep_p50_ms": round(p50(sql_deep), 2),
        "ratio_api_vs_bare_first": round(p50(api_first) / p50(sql_first), 1),
        "goal_ms": 100,
    }
    out = write_result(f"assets_list_{args.backend}", result)
    print(
        f"assets_list[{args.backend}] at {args.assets} assets: first page p50 "
        f"{result['api_first_p50_ms']} ms, deep page p50 {result['api_deep_p50_ms']} ms "
        f"(bare SQL {result['bare_sql_first_p50_ms']} / {result['bare_sql_deep_p50_ms']} ms; "
        f"goal < 100 ms) -> {out}"
    )


if __name__ == "__main__":
    main()
