"""`darkroom serve`: the API server (and, later, the scheduler) in one process."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from darkroom.cli.output import ExecutorOpt, RayAddressOpt, console, fail
from darkroom.errors import DarkroomError
from darkroom.text import is_number


def _tcp_socket(host: str, port: int) -> socket.socket:
    """The API's listening socket. Made with an explicit IPPROTO_TCP: asyncio sets TCP_NODELAY
    only on connections of such sockets, and without it every keep-alive request waits 40 ms
    (Nagle's algorithm against delayed ACKs)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    return sock


SOCKET_DIR_PREFIX = "darkroom-serve-"


def remove_stale_socket_dirs() -> list[Path]:
    """Removes the runs' socket folders that servers killed before their cleanup left in the
    temp dir (named by their server's PID; a live darkroom's folder stays)."""
    removed = []
    for path in Path(tempfile.gettempdir()).glob(f"{SOCKET_DIR_PREFIX}*"):
        pid = path.name.removeprefix(SOCKET_DIR_PREFIX).split("-", 1)[0]
        if not is_number(pid) or not path.is_dir():
            continue
        try:
            alive = b"darkroom" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            alive = False
        if not alive:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def local_url(host: str, port: int) -> str:
    """The URL a process on this machine reaches the server at."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (env DARKROOM_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (env DARKROOM_PORT)")] = None,
    no_migrate: Annotated[
        bool, typer.Option("--no-migrate", help="Refuse to start on an out-of-date schema.")
    ] = False,
    no_scheduler: Annotated[
        bool,
        typer.Option("--no-scheduler", help="Serve the API only; runs go to `darkroom worker`s."),
    ] = False,
    executor: ExecutorOpt = None,
    ray_address: RayAddressOpt = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
) -> None:
    """Start darkroom: migrate the database, create the admin on first start, serve the API
    and run processings (unless --no-scheduler)."""
    import uvicorn

    from darkroom.config import Settings
    from darkroom.server import create_app

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if log_level.lower() != "debug":  # a line per request of its own (Ray Serve's status, 1/s)
        logging.getLogger("httpx").setLevel(logging.WARNING)
    given = {"host": host, "port": port, "executor": executor, "ray_address": ray_address}
    settings = Settings(**{k: v for k, v in given.items() if v is not None})
    runs_url = local_url(settings.host, settings.port)
    if settings.executor == "ray":  # Ray nodes call back on the address others reach
        runs_url = os.environ.get("DARKROOM_URL", runs_url)
    try:
        app = create_app(
            settings,
            run_migrations=not no_migrate,
            scheduler_url=None if no_scheduler else runs_url,
            server_url=runs_url,
        )
    except DarkroomError as exc:
        fail(exc.message)
    startup = app.state.startup
    console.print(
        f"darkroom: database {settings.resolved_database_url} (schema {startup.migrated_to})"
    )
    console.print(f"darkroom: blobs in {settings.resolved_storage_url}")
    if startup.admin.created and startup.admin.token_path:
        console.print(f"darkroom: admin token written to {startup.admin.token_path}")
    elif startup.admin.created:
        console.print("darkroom: admin token taken from DARKROOM_ADMIN_TOKEN")
    else:
        console.print(f"darkroom: admin token in {settings.admin_token_path} (if generated here)")
    console.print(f"darkroom: listening on http://{settings.host}:{settings.port}", highlight=False)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=log_level.lower()
    )
    sockets = [_tcp_socket(settings.host, settings.port)]
    runs_dir = None
    if not no_scheduler and settings.executor == "local":
        # Sandboxed runs reach the API through a Unix socket; served here, not relayed.
        remove_stale_socket_dirs()
        runs_dir = Path(tempfile.mkdtemp(prefix=f"{SOCKET_DIR_PREFIX}{os.getpid()}-"))
        path = runs_dir / "server.sock"
        runs_socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        runs_socket.bind(str(path))
        os.chmod(path, 0o666)  # runs use another uid inside their user namespace
        sockets.append(runs_socket)
        app.state.executor.serve_runs_at(local_url(settings.host, settings.port), path)
    try:
        uvicorn.Server(config).run(sockets=sockets)
    finally:
        if runs_dir is not None:
            shutil.rmtree(runs_dir, ignore_errors=True)
