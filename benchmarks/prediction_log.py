"""The prediction log: write cost per request (goal p50 <= 1 ms) and paged reads of 1,000,000
logged predictions (goal < 300 ms a page).

(a) writes: one row at a time through the log's group commit, each waited for, as a lone
    predict does (its p50), then 8 writers at once (the cost per row when batches form);
    baseline in the same run: the same row inserted and committed by a bare SQLAlchemy Core
    statement on the same database;
(b) reads: 1,000,000 predictions of one deployment over 30 days (3 boxes each, 6 labels, one
    rare), then `GET /deployments/{id}/predictions` pages through the API: newest, oldest, a
    deep cursor, by label (common, rare), by score, in a window of a day in the middle, by
    model version; the p50 of 5 calls each.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).parent))
from fastapi.testclient import TestClient

from _common import TOKEN, p50, timed, write_result
from darkroom.config import Settings
from darkroom.db.engine import session_scope
from darkroom.db.models import Deployment, Prediction, utcnow
from darkroom.domain.predictions import label_field
from darkroom.server import create_app
from darkroom.serving.log_writer import PredictionLog

LABELS = ["Text", "Title", "Table", "Picture", "Section-header", "Rare"]
CHUNK = 20_000


def row(rng: random.Random, created_at: object, model_version_id: int = 1) -> dict:
    shapes = []
    for _ in range(3):
        label = "Rare" if rng.random() < 0.001 else rng.choice(LABELS[:5])
        shapes.append({"kind": "rectangle", "label": label, "score": round(rng.random(), 3),
                       "bbox": [rng.random() * 500, rng.random() * 500, 80.0, 40.0]})  # fmt: skip
    return {"deployment_id": 1, "model_version_id": model_version_id, "revision": 1,
            "created_at": created_at, "queue_ms": 0.2, "inference_ms": 180.0, "total_ms": 185.0,
            "width": 850, "height": 1100, "shapes": shapes, "labels": label_field(shapes),
            "max_score": max(s["score"] for s in shapes), "image_sha256": None,
            "review_status": "unreviewed"}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--writes", type=int, default=500)
    args = parser.parse_args()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "home", storage_url=str(Path(tmp) / "blobs"),
                            admin_token=TOKEN, serve_deployments=False)  # fmt: skip
        app = create_app(settings)
        with session_scope(app.state.sessions) as session:
            session.add(Deployment(organization_id=1, name="bench", created_by=1))
        engine = app.state.engine

        # (a) writes
        log = PredictionLog(engine, app.state.store)
        now = utcnow()
        lone = timed(lambda: log.write(row(rng, utcnow())).result(), args.writes)

        def bare() -> None:
            with engine.begin() as conn:
                conn.execute(insert(Prediction), [row(rng, utcnow())])

        bare_ms = timed(bare, args.writes)
        start = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: log.write(row(rng, utcnow())).result(), range(args.writes)))
        concurrent_ms = (time.perf_counter() - start) * 1000 / args.writes
        log.close()

        # (b) a million rows over 30 days, then pages
        start = time.perf_counter()
        first = now - timedelta(days=30)
        step = timedelta(days=30) / args.rows
        with engine.begin() as conn:
            for i in range(0, args.rows, CHUNK):
                chunk = [row(rng, first + step * (i + j), 1 + (i + j) * 2 // args.rows)
                         for j in range(min(CHUNK, args.rows - i))]  # fmt: skip
                conn.execute(insert(Prediction), chunk)
        loaded_s = time.perf_counter() - start
        middle = first + timedelta(days=15)
        queries = {
            "newest": {}, "oldest": {"order": "oldest"}, "deep_cursor": {"after": args.rows // 3},
            "label_common": {"label": "Table"}, "label_rare": {"label": "Rare"},
            "min_score_0.99": {"min_score": 0.99},
            "window_day": {"since": middle.isoformat(), "until": (middle + timedelta(days=1)).isoformat()},
            "model_version": {"model_version_id": 2},
        }  # fmt: skip
        pages = {}
        with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            for name, params in queries.items():

                def get(params: dict = params) -> None:
                    r = client.get(
                        "/api/v1/deployments/1/predictions", params={**params, "limit": 50}
                    )
                    assert r.status_code == 200, r.text
                    assert len(r.json()["items"]) == 50, params

                pages[name] = p50(timed(get, 5))
        app.state.engine.dispose()
    worst = max(pages, key=pages.get)
    result = {
        "writes": args.writes, "lone_write_p50_ms": round(p50(lone), 3),
        "bare_core_insert_p50_ms": round(p50(bare_ms), 3),
        "ratio_to_bare": round(p50(lone) / p50(bare_ms), 2),
        "concurrent_8_ms_per_row": round(concurrent_ms, 3), "rows": args.rows,
        "load_s": round(loaded_s, 1), "page_p50_ms": {k: round(v, 1) for k, v in pages.items()},
        "goal_write_p50_ms": 1.0, "goal_page_ms": 300,
    }  # fmt: skip
    path = write_result("prediction_log", result)
    print(f"prediction_log: a logged predict's write p50 {p50(lone):.2f} ms (a bare Core insert "
          f"{p50(bare_ms):.2f} ms, {p50(lone) / p50(bare_ms):.1f}x; 8 writers "
          f"{concurrent_ms:.2f} ms a row; goal <= 1 ms); {args.rows:,} predictions: slowest "
          f"page {worst} {pages[worst]:.0f} ms, p50s "
          f"{', '.join(f'{k} {v:.0f}' for k, v in pages.items())} ms (goal < 300) -> {path}")  # fmt: skip


if __name__ == "__main__":
    main()
