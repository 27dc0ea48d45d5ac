"""The server: one FastAPI application wiring settings, database, blob store, the scheduler,
serving, the REST API (`darkroom.api`) and the pages (`darkroom.web`), siblings that do not
import each other."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session

from darkroom import __version__
from darkroom import processings as processings_pkg
from darkroom.api.errors import install_error_handlers
from darkroom.api.headers import SecurityHeaders
from darkroom.api.limits import BodySizeLimit
from darkroom.api.routes import (
    assets,
    datasets,
    deployments,
    health,
    jobs,
    labels,
    models,
    pipelines,
    processings,
    runs,
    runtime,
    shapes,
    triggers,
    versions,
    webhooks,
    workers,
)
from darkroom.config import Settings, get_settings
from darkroom.db import migrate
from darkroom.db.engine import make_engine, make_session_factory, session_scope
from darkroom.domain import processings as processings_domain
from darkroom.domain.accounts import AdminBootstrap, ensure_admin
from darkroom.domain.processings import RevisionSpec
from darkroom.engine.scheduler import Scheduler
from darkroom.engine.webhook_sender import WebhookSender
from darkroom.errors import DarkroomError, InvalidInput
from darkroom.home_lock import hold_shared
from darkroom.maintenance import PeriodicGC
from darkroom.serving.base import Serving
from darkroom.serving.gate import Gate
from darkroom.serving.log_writer import PredictionLog
from darkroom.serving.supervisor import Supervisor
from darkroom.storage import BlobStore
from darkroom.web import routes as web_routes
from darkroom.web.render import page

__all__ = ["Startup", "create_app", "prepare"]

WEB_DIR = Path(__file__).resolve().parent / "web"


def render_error(request: Request, exc: DarkroomError) -> Response:
    """Pages answer errors as pages; the API keeps its JSON envelope. The page leads back to
    where the action came from (this server's own page only), or to what it names."""
    referer = request.headers.get("referer", "")
    origin = f"{request.url.scheme}://{request.url.netloc}/"
    back = "/" + referer[len(origin) :] if referer.startswith(origin) else None
    return page(request, "error.html", exc.status_code, title=f"Error {exc.status_code}",
                message=exc.message, back=back)  # fmt: skip


log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


@dataclass(frozen=True, slots=True)
class Startup:
    """What `prepare` did, for `darkroom serve` to tell the user."""

    migrated_to: str | None
    admin: AdminBootstrap


class SchemaOutOfDate(DarkroomError):
    code = "schema_out_of_date"
    status_code = 503


def prepare(app: FastAPI, *, run_migrations: bool = True) -> Startup:
    """Migrates the database (or checks it is current) and bootstraps the first admin."""
    engine = app.state.engine
    if run_migrations:
        migrate.upgrade(engine)
    else:
        current, head = migrate.current_revision(engine), migrate.head_revision(engine)
        if current != head:
            raise SchemaOutOfDate(
                f"database schema is at {current or 'nothing (empty database)'}, "
                f"this darkroom needs {head}; "
                "start without --no-migrate to upgrade it"
            )
    settings: Settings = app.state.settings
    with session_scope(app.state.sessions) as session:
        admin = ensure_admin(session, settings.admin_token_path, settings.admin_token)
        register_builtins(session)
    return Startup(migrate.current_revision(engine), admin)


def register_builtins(session: Session) -> None:
    """Registers `darkroom.processings` as public processings (a changed one gets a revision)."""
    for spec, source in processings_pkg.discover():
        processings_domain.register_builtin(
            session, name=spec.name, type=spec.type, description=spec.description,
            needs_model=spec.needs_model, model_families=list(spec.model_families) or None,
            target=spec.target,
            spec=RevisionSpec(source, spec.parameters_schema, spec.timeout_s, spec.resources),
        )  # fmt: skip


def make_serving(settings: Settings, app: FastAPI, server_url: str | None) -> Serving:
    """Replicas on this machine, or Ray Serve applications when the executor is Ray."""
    if settings.executor == "ray":
        from darkroom.serving.ray_serving import RayServing

        url = server_url or f"http://{settings.host}:{settings.port}"
        return RayServing(
            app.state.sessions, dashboard=settings.ray_address, serve_url=settings.ray_serve_url,
            server_url=url, limits=settings.run_defaults, sandbox_mode=settings.sandbox,
            instance=settings.instance, on_status=app.state.gate.forget,
        )  # fmt: skip
    return Supervisor(
        app.state.sessions, app.state.store, limits=settings.run_defaults,
        sandbox_mode=settings.sandbox, hidden=settings.sandbox_hidden,
        instance=settings.instance, on_status=app.state.gate.forget,
        sandbox_uid=settings.sandbox_uid,
    )  # fmt: skip


def create_app(
    settings: Settings | None = None,
    *,
    run_migrations: bool = True,
    scheduler_url: str | None = None,
    server_url: str | None = None,
) -> FastAPI:
    """A ready application: the database is migrated and the admin exists when this returns.

    With `scheduler_url` (the URL runs use to call back), the app also runs the scheduler
    and a local executor in a background thread for as long as it is served. `server_url`: the
    address Ray nodes reach this server at (Serve replicas fetch their weights there).
    """
    settings = settings or get_settings()
    executor = settings.make_executor()
    if scheduler_url is not None:
        try:  # SandboxUnavailable: refuse to start, say how to fix it
            executor.check_available()
        except RuntimeError as exc:  # the Ray cluster does not answer
            raise InvalidInput(str(exc), code="executor_unavailable") from exc
        if not executor.sandboxed:
            log.warning("DARKROOM_SANDBOX=none: processings run unsandboxed, with this "
                        "server's user, files and network")  # fmt: skip

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        home_lock = hold_shared(settings.home)  # `darkroom demo` must not empty it under us
        gc = None
        if settings.blob_gc_interval_s > 0:
            gc = PeriodicGC(app.state.sessions, app.state.store, settings.blob_gc_interval_s,
                            settings.blob_gc_grace_s)  # fmt: skip
            gc.start()
        supervisor = None
        app.state.prediction_log = PredictionLog(app.state.engine, app.state.store)
        if settings.serve_deployments:
            supervisor = make_serving(settings, app, server_url or scheduler_url)
            app.state.supervisor = supervisor
            supervisor.start()
        sender = WebhookSender(app.state.sessions, allow_private=settings.webhooks_allow_private)
        sender.start()
        scheduler = None
        if scheduler_url is not None:
            scheduler = Scheduler(app.state.sessions, executor, scheduler_url, settings.scheduler)
            app.state.scheduler = scheduler
            scheduler.start()
        try:
            yield
        finally:
            if supervisor is not None:
                supervisor.stop()
            app.state.prediction_log.close()
            if scheduler is not None:
                scheduler.stop()
            sender.stop()
            if gc is not None:
                gc.stop()
            home_lock.close()

    app = FastAPI(
        lifespan=lifespan,
        title="darkroom",
        version=__version__,
        description="Processings on computer-vision datasets: datasets, versions, assets, "
        "annotations, import/export.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    engine = make_engine(settings.resolved_database_url)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = make_session_factory(engine)
    app.state.serialize_writes = engine.dialect.name == "sqlite"
    app.state.write_lock = None
    app.state.executor = executor
    app.state.scheduler = None
    app.state.supervisor = None
    app.state.gate = Gate(app.state.sessions)
    app.state.store = BlobStore(settings.resolved_storage_url, **settings.storage_options)
    app.state.startup = prepare(app, run_migrations=run_migrations)

    install_error_handlers(app, html=render_error)
    app.mount("/static", StaticFiles(directory=str(WEB_DIR / "static")), name="static")
    app.include_router(web_routes.router)

    @app.exception_handler(web_routes.SignInRequired)
    async def _sign_in(_: Request, exc: web_routes.SignInRequired) -> RedirectResponse:
        return RedirectResponse(f"/login?next={quote(exc.next_url)}", status_code=303)

    for module in (health, datasets, versions, labels, assets, shapes, models, processings, jobs,
                   runs, runtime, deployments, pipelines, triggers, webhooks,
                   workers):  # fmt: skip
        app.include_router(module.router, prefix=API_PREFIX)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(SecurityHeaders)
    return app
