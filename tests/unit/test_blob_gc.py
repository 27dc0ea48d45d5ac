"""Blob garbage collection: only blobs no asset references go, rows and bytes."""

from __future__ import annotations

import io

from darkroom.db.engine import make_engine, make_session_factory, session_scope
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
    with session_scope(sessions) as session:
        assert blobs.collect_garbage(session, store, dry_run=True) == [gone_sha]
        assert store.exists(gone_sha)
        assert blobs.collect_garbage(session, store) == [gone_sha]
    assert not store.exists(gone_sha)
    assert store.exists(kept_sha)
    with session_scope(sessions) as session:
        assert blobs.collect_garbage(session, store) == []
    engine.dispose()
