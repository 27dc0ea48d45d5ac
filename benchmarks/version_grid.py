"""The version page's assets grid for a 1,000,000-asset version: server time of the whole page.

Goal: < 300 ms. The page renders 48 thumbnails with their boxes, the version's counts and
labels. Baseline in the same run: the API's plain assets list (first page of 50), so the ratio
shows what the page adds (counts over the version, shapes, labels, the template).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))
from _common import TOKEN, darkroom, database, p50, timed, write_result
from assets_list import fill
from darkroom.web.auth import COOKIE

REPEAT = 20
BOXES = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assets", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        with database(args.backend, tmp) as url, darkroom(url, tmp) as (app, api):
            ds = api.post("/api/v1/datasets", json={"name": "big"}).json()
            v = api.post(f"/api/v1/datasets/{ds['id']}/versions", json={"name": "v"}).json()
            for name in ("cat", "dog"):
                api.post(f"/api/v1/versions/{v['id']}/labels", json={"name": name})
            fill(app.state.engine, v["id"], args.assets)
            with app.state.engine.connect() as conn:
                first_ids = conn.execute(
                    text("SELECT id FROM assets WHERE version_id = :v ORDER BY id LIMIT :n"),
                    {"v": v["id"], "n": BOXES},
                ).scalars()
                first_ids = list(first_ids)
            box = {"shapes": [{"kind": "rectangle", "label": "cat", "bbox": [4, 4, 20, 20]}]}
            for asset_id in first_ids:
                api.post(f"/api/v1/assets/{asset_id}/annotations", json=box).raise_for_status()
            with TestClient(app, cookies={COOKIE: TOKEN}) as web:

                def grid() -> None:
                    r = web.get(f"/versions/{v['id']}")
                    assert r.status_code == 200
                    assert r.text.count("data-asset=") == 48
                    assert 'class="box"' in r.text

                def api_list() -> None:
                    r = api.get(f"/api/v1/versions/{v['id']}/assets", params={"limit": 50})
                    assert len(r.json()["items"]) == 50

                page_ms, list_ms = timed(grid, REPEAT), timed(api_list, REPEAT)
    result = {
        "backend": args.backend,
        "assets": args.assets,
        "page_p50_ms": round(p50(page_ms), 1),
        "page_max_ms": round(max(page_ms), 1),
        "api_list_p50_ms": round(p50(list_ms), 1),
        "ratio_page_vs_api_list": round(p50(page_ms) / p50(list_ms), 1),
        "goal_ms": 300,
    }
    out = write_result(f"version_grid_{args.backend}", result)
    print(
        f"version_grid[{args.backend}] at {args.assets} assets: page p50 {result['page_p50_ms']} ms "
        f"(max {result['page_max_ms']}; API list p50 {result['api_list_p50_ms']} ms, "
        f"x{result['ratio_page_vs_api_list']}; goal < 300 ms) -> {out}"
    )


if __name__ == "__main__":
    main()
