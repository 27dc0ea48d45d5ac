"""Blob rows: registered once per sha256, collected when nothing references them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from darkroom.db.models import Asset, Blob, ModelVersion, ProcessingRevision
from darkroom.storage import BlobStore

__all__ = ["collect_garbage", "insert_ignore", "register_blobs"]


def insert_ignore(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING on SQLite and PostgreSQL alike."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    factory = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(factory(model).on_conflict_do_nothing(), rows)


def register_blobs(session: Session, blobs: Iterable[tuple[str, int, str]]) -> None:
    """Records (sha256, size, mime) rows; already known blobs are left as they are."""
    rows = {sha: {"sha256": sha, "size": size, "mime": mime} for sha, size, mime in blobs}
    insert_ignore(session, Blob, list(rows.values()))


def collect_garbage(session: Session, store: BlobStore, *, dry_run: bool = False) -> list[str]:
    """Deletes blobs no asset, model version or bundle revision references, rows first, then
    bytes; returns their hashes.

    Bytes are deleted after the rows commit-wise in the caller's transaction, so a crash in
    between leaves stray bytes (harmless, re-collectable), never a row without its bytes.
    """
    by_asset = exists().where(Asset.blob_sha256 == Blob.sha256)
    by_model = exists().where(ModelVersion.weights_sha256 == Blob.sha256)
    by_bundle = exists().where(ProcessingRevision.bundle_sha256 == Blob.sha256)
    unreferenced = select(Blob.sha256).where(~by_asset, ~by_model, ~by_bundle)
    garbage = list(session.scalars(unreferenced))
    if dry_run or not garbage:
        return garbage
    session.execute(delete(Blob).where(Blob.sha256.in_(garbage)))
    session.commit()
    for sha in garbage:
        store.delete(sha)
    return garbage
