"""`darkroom demo`: a fresh darkroom with real pages, a real model and a pre-annotation job."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from darkroom.cli.output import console, fail
from darkroom.cli.serve import local_url
from darkroom.client import Client

DEMO_LABELS = ["Title", "Text", "Section-header", "Table", "Picture"]
STARTUP_TIMEOUT_S = 60


def demo(
    home: Annotated[
        Path, typer.Option(help="Demo home, emptied first (never your real ~/.darkroom).")
    ] = Path.home() / ".darkroom-demo",
    host: str = "127.0.0.1",
    port: int = 8000,
    pages: Annotated[int, typer.Option(help="Pages to render and pre-annotate.")] = 24,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Exit after the job instead of serving.")
    ] = False,
) -> None:
    """Start darkroom in a fresh home, load document pages and the DocLayNet model, pre-annotate
    the pages with `yolo-preannotation`, follow the job live, then keep serving."""
    import uvicorn

    from darkroom.config import Settings
    from darkroom.demo.model import doclaynet_path
    from darkroom.home_lock import HomeInUse, lock_exclusive
    from darkroom.server import create_app

    try:
        model_file = doclaynet_path()
    except FileNotFoundError as exc:
        fail(str(exc))
    url = local_url(host, port)
    _check_port_free(host, port)  # before anything is deleted
    if home.exists():
        try:
            lock = lock_exclusive(home)
        except HomeInUse as exc:
            fail(exc.message)
        shutil.rmtree(home)
        lock.close()
    settings = Settings(home=home, host=host, port=port, database_url=None, storage_url=None)
    app = create_app(settings, scheduler_url=url)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="darkroom-demo-server", daemon=True)
    thread.start()
    token = settings.admin_token or settings.admin_token_path.read_text().strip()
    _wait_for(url, thread)
    console.print(f"darkroom demo: serving {url} from {home}", highlight=False)
    ok = False
    try:
        with Client(url, token) as dr:
            ok = _run_demo(dr, model_file, pages)
        docs = f"{url}/api/v1/docs"
        console.print(f"\nAPI and docs: {docs} (admin token: {settings.admin_token_path})",
                      highlight=False)  # fmt: skip
        if not no_serve:
            console.print("serving until Ctrl-C")
            while thread.is_alive():
                time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.should_exit = True
        thread.join(30)
    if not ok:
        raise typer.Exit(1)


def _check_port_free(host: str, port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            fail(f"port {port} on {host} is taken (another darkroom?); try --port")


def _wait_for(url: str, thread: threading.Thread) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not thread.is_alive():
            fail(f"the demo server could not start at {url} (is the port taken? try --port)")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    fail(f"the demo server did not answer at {url}")


def _run_demo(dr: Client, model_file: Path, count: int) -> bool:
    ds = dr.create_dataset("document-pages", "Pages rendered from public-domain books")
    version = dr.create_version(ds["id"], "v1")
    for name in DEMO_LABELS:
        dr.create_label(version["id"], name)
    console.print(
        f"dataset {ds['name']!r}, version {version['name']!r}, labels {', '.join(DEMO_LABELS)}"
    )
    from darkroom.demo.pages import render_pages

    images = render_pages(count)
    for start in range(0, len(images), 16):
        dr.upload_assets(version["id"], images[start : start + 16])
    console.print(f"uploaded {len(images)} pages")
    model = dr.create_model(
        "doclaynet", "YOLOv8n trained on DocLayNet (weights AGPL-3.0, Ultralytics)"
    )
    mv = dr.upload_model_version(model["id"], model_file, name="yolov8n-1024")
    console.print(f"model {model['name']}/{mv['name']}: {mv['family']}, input {mv['input_size']}, "
                  f"{len(mv['labels'])} classes: {', '.join(mv['labels'])}")  # fmt: skip
    job = dr.launch_job("yolo-preannotation", version["id"], model_version_id=mv["id"],
                        parameters={"batch_size": 8})  # fmt: skip
    run_id = job["runs"][0]["id"]
    console.print(f"launched job {job['id']} (run {run_id}): following its log\n")
    progress = Progress(TextColumn("pre-annotating"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console)  # fmt: skip
    end: dict = {}
    with progress:
        task = progress.add_task("run", total=count)
        for event, data in dr.follow_logs(run_id):
            if event == "end":
                end = data
                break
            progress.console.print(data["text"], highlight=False, markup=False)
            done = dr.get_run(run_id)["progress"]
            progress.update(task, completed=done["done"], total=done["total"] or count)
    stats = dr.version_stats(version["id"])
    console.print(f"\nrun {run_id} {end.get('status')} in {end.get('duration_s') or 0:.1f} s: "
                  f"{stats['annotated_assets']}/{stats['assets']} pages annotated, "
                  f"{stats['shapes']} boxes")  # fmt: skip
    for label in stats["labels"]:
        console.print(f"  {label['name']:<15} {label['shapes']}")
    return end.get("status") == "succeeded"
