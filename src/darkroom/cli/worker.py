"""`darkroom worker`: a scheduler and local executor without the API, any number of them."""

from __future__ import annotations

import logging
import os
import signal
from typing import Annotated

import typer

from darkroom.cli.output import ExecutorOpt, RayAddressOpt, console, fail
from darkroom.client import DEFAULT_URL
from darkroom.errors import DarkroomError


def worker(
    server_url: Annotated[
        str | None,
        typer.Option(help="URL runs use to reach the API (env DARKROOM_URL)"),
    ] = None,
    max_concurrent: Annotated[
        int | None, typer.Option(help="Runs at once (env DARKROOM_MAX_CONCURRENT_RUNS)")
    ] = None,
    executor: ExecutorOpt = None,
    ray_address: RayAddressOpt = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
) -> None:
    """Claim and execute runs from the database until stopped (SIGTERM or Ctrl-C)."""
    from darkroom.config import Settings
    from darkroom.db.engine import make_engine, make_session_factory
    from darkroom.engine.scheduler import Scheduler, SchedulerConfig
    from darkroom.home_lock import hold_shared

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    overrides = {"executor": executor, "ray_address": ray_address}
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    base = settings.scheduler
    config = SchedulerConfig(
        max_concurrent=max_concurrent or base.max_concurrent,
        lease_s=base.lease_s,
        heartbeat_s=base.heartbeat_s,
        cancel_grace_s=base.cancel_grace_s,
    )
    url = server_url or os.environ.get("DARKROOM_URL", DEFAULT_URL)
    sessions = make_session_factory(make_engine(settings.resolved_database_url))
    runner = settings.make_executor()
    try:
        runner.check_available()
    except DarkroomError as exc:
        fail(exc.message)
    except RuntimeError as exc:  # no Ray cluster answers
        fail(str(exc))
    if not runner.sandboxed:
        console.print("darkroom worker: DARKROOM_SANDBOX=none, processings run unsandboxed")
    if runner.name == "ray":
        console.print(f"darkroom worker: runs go to the Ray cluster at {settings.ray_address}")
    scheduler = Scheduler(sessions, runner, url, config)
    home_lock = hold_shared(settings.home)  # `darkroom demo` must not empty it under us

    def _stop(signum: int, _frame: object) -> None:
        console.print(f"darkroom worker: {signal.Signals(signum).name}, stopping")
        scheduler.stop(timeout_s=0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    console.print(f"darkroom worker {scheduler.worker_id}: runs call back {url}", highlight=False)
    scheduler.run()
    home_lock.close()
