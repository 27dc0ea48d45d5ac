"""Blob garbage collection: only blobs no asset references go, rows and bytes."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator

import pytest

from darkroom.db.engine import SessionFactory, make_engine, make_session_factory, session_scope
from darkroom.domain import accounts, assets, blobs, datasets, versions
from darkroom.storage import BlobStore
from tests.helpers import image_bytes


def test_collects_only_unreferenced_blobs(tmp_path, sqlite_template):
    import shutil

    shutil.copy(sqlite_template, tmp_path / "db.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'db.db'}")
    sessions = make_session_factory(engine)
    store = BlobStore(str(tmp_path / "blobs"))
    with session_scope(sessions) as session:
        accounts.ensure_admin(session, tmp_path / "token", "tok")
        who = accounts.authenticate(session, "tok")
        ds = datasets.create_dataset(session, who, "d")
        v = versions.create_version(session, who, ds.id, "v")
        kept = assets.add_asset(
            session, store, who, v.id, "a.jpg", io.BytesIO(image_bytes(seed=1)), max_pixels=10**8
        )
        gone = assets.add_asset(
            session, store, who, v.id, "b.jpg", io.BytesIO(image_bytes(seed=2)), max_pixels=10**8
        )
        kept_sha, gone_sha, gone_id = kept.blob_sha256, gone.blob_sha256, gone.id
    with session_scope(sessions) as session:
        assets.delete_asset(session, who, gone_id)
    with session_scope(sessions) as session:  # within the grace period: spared
        assert blobs.collect_garbage(session, store).rows == []
    with session_scope(sessions) as session:
        assert blobs.collect_garbage(session, store, dry_run=True, grace_s=0).rows == [gone_sha]
        assert store.exists(gone_sha)
        assert blobs.collect_garbage(session, store, grace_s=0).rows == [gone_sha]
    assert not store.exists(gone_sha)
    assert store.exists(kept_sha)
    with session_scope(sessions) as session:
        assert blobs.collect_garbage(session, store, grace_s=0).rows == []
    engine.dispose()


@pytest.fixture
def gc_env(tmp_path, sqlite_template) -> Iterator[tuple[SessionFactory, BlobStore]]:
    shutil.copy(sqlite_template, tmp_path / "db.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'db.db'}")
    yield make_session_factory(engine), BlobStore(str(tmp_path / "blobs"))
    engine.dispose()


def test_stray_files_without_rows_go_once_older_than_the_grace(gc_env):
    """A refused upload or a killed import leaves bytes and no row: found by listing the store."""
    import os
    import time

    sessions, store = gc_env
    old = store.put_bytes(image_bytes(seed=3)).sha256
    new = store.put_bytes(image_bytes(seed=4)).sha256
    past = time.time() - 7200
    os.utime(store.local_path(old), (past, past))
    with session_scope(sessions) as session:
        found = blobs.collect_garbage(session, store, grace_s=3600)
    assert (found.rows, found.strays) == ([], [old])
    assert not store.exists(old)
    assert store.exists(new)


def test_registering_a_known_blob_again_renews_its_grace(gc_env):
    """Bytes uploaded again while unreferenced must not be collected under the new asset."""
    from datetime import timedelta

    from sqlalchemy import update

    from darkroom.db.models import Blob, utcnow

    sessions, store = gc_env
    sha = store.put_bytes(image_bytes(seed=5)).sha256
    with session_scope(sessions) as session:
        blobs.register_blobs(session, [(sha, 10, "image/jpeg")])
        session.execute(update(Blob).values(created_at=utcnow() - timedelta(days=1)))
    with session_scope(sessions) as session:
        blobs.register_blobs(session, [(sha, 10, "image/jpeg")])  # uploaded again
    with session_scope(sessions) as session:
        assert blobs.collect_garbage(session, store, grace_s=3600).rows == []
    assert store.exists(sha)
