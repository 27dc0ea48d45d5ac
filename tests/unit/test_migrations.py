"""Every migration goes up and down on SQLite and PostgreSQL, and matches the models."""

from __future__ import annotations

import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from darkroom.db import migrate
from darkroom.db.engine import make_engine
from darkroom.db.models import Base


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_engine(request, tmp_path):
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
        yield engine
        engine.dispose()
        return
    from tests.conftest import PG_ADMIN_URL, _pg_url

    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"darkroom_mig_{tmp_path.name[-20:].lower().replace('-', '_')}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = make_engine(_pg_url(name))
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def test_up_down_up(empty_engine):
    migrate.upgrade(empty_engine)
    assert migrate.current_revision(empty_engine) == migrate.head_revision(empty_engine)
    assert "assets" in inspect(empty_engine).get_table_names()
    migrate.downgrade(empty_engine, "base")
    assert migrate.current_revision(empty_engine) is None
    assert set(inspect(empty_engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(empty_engine)
    assert migrate.current_revision(empty_engine) == migrate.head_revision(empty_engine)


def test_migrations_match_models(empty_engine):
    migrate.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_sqlite_pragmas(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_upgrade_keeps_existing_rows(empty_engine):
    """Rebuilding referenced tables (SQLite batch mode) must not cascade-delete their children."""
    migrate.upgrade(empty_engine, "0001")
    with empty_engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO organizations (name, created_at) VALUES ('o', '2026-01-01 00:00:00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO datasets (organization_id, name, description, created_at, updated_at) "
            "VALUES (1, 'd', '', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO dataset_versions (dataset_id, name, description, created_at, updated_at) "
            "VALUES (1, 'v', '', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO labels (version_id, name, color, position) VALUES (1, 'cat', '#000000', 0)"
        )
    migrate.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM labels").scalar() == 1


def test_runs_get_their_jobs_parameters_when_they_start_keeping_their_own(empty_engine):
    migrate.upgrade(empty_engine, "0008")
    t = "'2026-01-01 00:00:00'"
    with empty_engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO organizations (name, created_at) VALUES ('o', {t})")
        conn.exec_driver_sql(
            "INSERT INTO processings (name, type, target, description, is_public, needs_model, "
            "created_at, updated_at) VALUES ('p', 'custom', 'dataset_version', '', true, false, "
            f"{t}, {t})"
        )
        conn.exec_driver_sql(
            "INSERT INTO processing_revisions (processing_id, number, source, parameters_schema, "
            f"timeout_s, resources, digest, is_dev, created_at) VALUES (1, 1, '{{}}', '{{}}', 60, "
            f"'{{}}', 'x', false, {t})"
        )
        conn.exec_driver_sql(
            "INSERT INTO jobs (organization_id, processing_id, parameters, created_by, created_at) "
            f"""VALUES (1, 1, '{{"threshold": 0.3}}', 1, {t})"""
        )
        conn.exec_driver_sql(
            "INSERT INTO runs (job_id, attempt, revision_id, status, queued_at, progress_done, "
            f"resume) VALUES (1, 1, 1, 'succeeded', {t}, 0, false)"
        )
    migrate.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        value = conn.exec_driver_sql("SELECT parameters FROM runs").scalar()
    assert (value if isinstance(value, dict) else json.loads(value)) == {"threshold": 0.3}


def test_jobs_get_numbers_per_organization_previews_none(empty_engine):
    """0015 numbers the jobs there are: 1, 2… in each organization, previews left out."""
    migrate.upgrade(empty_engine, "0014")
    t = "'2026-01-01 00:00:00'"
    with empty_engine.begin() as conn:
        sql = conn.exec_driver_sql
        for org in ("a", "b"):
            sql(f"INSERT INTO organizations (name, created_at) VALUES ('{org}', {t})")
        sql("INSERT INTO processings (name, type, target, description, is_public, needs_model, "
            f"created_at, updated_at) VALUES ('p', 'custom', 'dataset_version', '', true, false, "
            f"{t}, {t})")  # fmt: skip
        sql("INSERT INTO datasets (organization_id, name, description, created_at, updated_at) "
            f"VALUES (1, 'd', '', {t}, {t})")  # fmt: skip
        sql("INSERT INTO dataset_versions (dataset_id, name, description, created_at, "
            f"updated_at) VALUES (1, 'v1', '', {t}, {t})")  # fmt: skip
        sql("INSERT INTO dataset_versions (dataset_id, name, description, preview_of_id, "
            f"created_at, updated_at) VALUES (1, 'preview-1', '', 1, {t}, {t})")  # fmt: skip
        # org a: a job, a preview, a job; org b: a job
        for org, version in ((1, 1), (1, 2), (2, "NULL"), (1, 1)):
            sql("INSERT INTO jobs (organization_id, processing_id, target_version_id, "
                f"parameters, created_by, created_at) VALUES ({org}, 1, {version}, '{{}}', 1, "
                f"{t})")  # fmt: skip
    migrate.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        numbers = conn.exec_driver_sql("SELECT number FROM jobs ORDER BY id").scalars().all()
        given = (
            conn.exec_driver_sql("SELECT jobs_numbered FROM organizations ORDER BY id")
            .scalars()
            .all()
        )
    assert numbers == [1, None, 1, 2]
    assert given == [2, 1]
