"""Helpers shared by the benchmark scripts: a throw-away darkroom, timing, JSON output."""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from darkroom.config import Settings
from darkroom.db.engine import make_engine
from darkroom.server import create_app

RESULTS = Path(__file__).parent / "results"
TOKEN = "drk_bench_token"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    """Wall times in milliseconds of `repeat` calls (after one warm-up call)."""
    fn()
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def p50(values: list[float]) -> float:
    return statistics.median(values)


@contextmanager
def database(backend: str, tmp: Path) -> Iterator[str]:
    """An empty database URL on `backend` (sqlite or postgres), dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'bench.db'}"
        return
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"darkroom_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def darkroom(database_url: str, tmp: Path) -> Iterator[tuple[Any, TestClient]]:
    settings = Settings(
        home=tmp / "home",
        database_url=database_url,
        storage_url=str(tmp / "blobs"),
        admin_token=TOKEN,
    )
    app = create_app(settings)
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield app, client
    app.state.engine.dispose()


@contextmanager
def served(tmp: Path, **env: str) -> Iterator[tuple[str, str]]:
    """A real `darkroom serve` (scheduler included) on a free port: yields (url, token)."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    environ = {
        **os.environ,
        "DARKROOM_HOME": str(tmp / "home"),
        "DARKROOM_ADMIN_TOKEN": TOKEN,
        **env,
    }
    darkroom_bin = str(Path(sys.executable).parent / "darkroom")
    proc = subprocess.Popen(
        [darkroom_bin, "serve", "--port", str(port), "--log-level", "warning"],
        env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/api/v1/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url, TOKEN
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def succeeded(dr: Any, run_id: int) -> dict[str, Any]:
    """The run once it ended; a benchmark of a failed run is void.

    Waits on the run's log stream, as `darkroom logs --follow` does: polling the API every few
    ms would cost the server a share of the 2 cores the run is measured on (50 requests/s took
    3.6 s of server CPU in a 13 s pre-annotation run). The server notices the end within its
    stream's poll interval (0.1 s), which counts against darkroom.
    """
    run = next(data for event, data in dr.follow_logs(run_id) if event == "end")
    assert run["status"] == "succeeded", run
    return run


def summarize_rounds(
    rounds: list[dict[str, float]], goal: float, **fields: Any
) -> tuple[dict[str, Any], dict[str, float]]:
    """The JSON result of alternating rounds (each with its `ratio`), and the median round."""
    mid = sorted(rounds, key=lambda r: r["ratio"])[len(rounds) // 2]
    result = {
        **fields,
        "rounds": [{k: round(v, 4) for k, v in r.items()} for r in rounds],
        "median_ratio": round(statistics.median(r["ratio"] for r in rounds), 3),
        "goal_ratio": goal,
    }
    return result, mid


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def bare_detect(session: Any, data: bytes, conf: float = 0.25, iou: float = 0.45) -> int:
    """One image through the plain libraries, as a script around onnxruntime would do it:
    decode (Pillow), letterbox (OpenCV), onnxruntime, YOLOv8 boxes + NMS; the box count."""
    import io

    import cv2
    import numpy as np
    from PIL import Image

    name = session.get_inputs()[0].name
    size = session.get_inputs()[0].shape[2]
    img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    h, w = img.shape[:2]
    s = min(size / w, size / h)
    nw, nh = round(w * s), round(h * s)
    canvas = np.full((size, size, 3), 114, np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    canvas[top : top + nh, left : left + nw] = cv2.resize(img, (nw, nh))
    x = canvas.transpose(2, 0, 1)[None].astype(np.float32) / 255.0
    out = session.run(None, {name: x})[0][0].T
    scores = out[:, 4:].max(1)
    keep = scores > conf
    b, sc, cl = out[keep, :4], scores[keep], out[keep, 4:].argmax(1)
    xyxy = np.c_[b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2] + cl[:, None] * 4096.0
    idx = cv2.dnn.NMSBoxes(
        [[float(a), float(c), float(e - a), float(f - c)] for a, c, e, f in xyxy],
        sc.tolist(), conf, iou,
    )  # fmt: skip
    return len(idx)
