"""Blob rows: registered once per sha256, collected when nothing references them."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from darkroom.db.models import Asset, Blob, ModelVersion, Prediction, ProcessingRevision, utcnow
from darkroom.storage import BlobStore

__all__ = ["DEFAULT_GRACE_S", "Collected", "collect_garbage", "insert_ignore", "register_blobs"]

log = logging.getLogger(__name__)
DEFAULT_GRACE_S = 3600.0


def _upsert(session: Session | Connection, model: Any) -> Any:
    """An INSERT with ON CONFLICT clauses, in the session's dialect (SQLite or PostgreSQL)."""
    bind = session if isinstance(session, Connection) else session.get_bind()
    dialect = bind.dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(model)


def insert_ignore(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING on SQLite and PostgreSQL alike."""
    if not rows:
        return
    session.execute(_upsert(session, model).on_conflict_do_nothing(), rows)


def register_blobs(session: Session | Connection, blobs: Iterable[tuple[str, int, str]]) -> None:
    """Records (sha256, size, mime) rows. A blob already known gets its `created_at` renewed:
    garbage collection spares blobs registered within its grace period, so bytes uploaded
    again while a collection runs are not deleted under the new reference."""
    rows = {sha: {"sha256": sha, "size": size, "mime": mime} for sha, size, mime in blobs}
    if not rows:
        return
    stmt = _upsert(session, Blob)
    stmt = stmt.on_conflict_do_update(
        index_elements=[Blob.sha256], set_={"created_at": stmt.excluded.created_at}
    )
    now = utcnow()
    session.execute(stmt, [{**row, "created_at": now} for row in rows.values()])


@dataclass(frozen=True, slots=True)
class Collected:
    rows: list[str]  # blobs nothing referenced: rows and bytes deleted
    strays: list[str]  # files without a row (a refused upload, a killed import)


def collect_garbage(
    session: Session,
    store: BlobStore,
    *,
    dry_run: bool = False,
    grace_s: float = DEFAULT_GRACE_S,
    now: datetime | None = None,
) -> Collected:
    """Deletes blobs no asset, model version, bundle revision or prediction references, rows
    first, then bytes, and files that have no row at all; both only once older than `grace_s`, so an
    upload still in its transaction keeps its bytes.

    Bytes are deleted after the rows commit, so a crash in between leaves stray bytes (found
    by the next collection), never a row without its bytes.
    """
    now = now or utcnow()
    cutoff = now - timedelta(seconds=grace_s)
    by_asset = exists().where(Asset.blob_sha256 == Blob.sha256)
    by_model = exists().where(ModelVersion.weights_sha256 == Blob.sha256)
    by_bundle = exists().where(ProcessingRevision.bundle_sha256 == Blob.sha256)
    by_prediction = exists().where(Prediction.image_sha256 == Blob.sha256)
    unreferenced = select(Blob.sha256).where(
        ~by_asset, ~by_model, ~by_bundle, ~by_prediction, Blob.created_at < cutoff
    )
    garbage = list(session.scalars(unreferenced))
    strays = _strays(session, store, cutoff.timestamp())
    if dry_run:
        return Collected(garbage, strays)
    if garbage:
        session.execute(delete(Blob).where(Blob.sha256.in_(garbage)))
        session.commit()
    for sha in [*garbage, *strays]:
        store.delete(sha)
    if garbage or strays:
        log.info("blob gc: %d unreferenced, %d stray files deleted", len(garbage), len(strays))
    return Collected(garbage, strays)


def _strays(session: Session, store: BlobStore, before: float) -> list[str]:
    """Files of the store older than `before` (epoch seconds) that no blob row names."""
    old = [sha for sha, mtime in store.iter_blobs() if mtime < before]
    strays = []
    for i in range(0, len(old), 1000):
        chunk = old[i : i + 1000]
        known = set(session.scalars(select(Blob.sha256).where(Blob.sha256.in_(chunk))))
        strays += [sha for sha in chunk if sha not in known]
    return strays
