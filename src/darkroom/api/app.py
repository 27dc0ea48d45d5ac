"""The FastAPI application: wiring of settings, database, blob store, routes and errors."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import FastAPI

from darkroom import __version__
from darkroom.api.errors import install_error_handlers
from darkroom.api.limits import BodySizeLimit
from darkroom.api.routes import assets, datasets, health, labels, versions
from darkroom.config import Settings, get_settings
from darkroom.db import migrate
from darkroom.db.engine import make_engine, make_session_factory, session_scope
from darkroom.domain.accounts import AdminBootstrap, ensure_admin
from darkroom.errors import DarkroomError
from darkroom.storage import BlobStore

__all__ = ["Startup", "create_app", "prepare"]

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
    return Startup(migrate.current_revision(engine), admin)


def create_app(settings: Settings | None = None, *, run_migrations: bool = True) -> FastAPI:
    """A ready application: the database is migrated and the admin exists when this returns."""
    settings = settings or get_settings()
    app = FastAPI(
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
    app.state.store = BlobStore(settings.resolved_storage_url, **settings.storage_options)
    app.state.startup = prepare(app, run_migrations=run_migrations)

    install_error_handlers(app)
    for module in (health, datasets, versions, labels, assets):
        app.include_router(module.router, prefix=API_PREFIX)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes)
    return app
