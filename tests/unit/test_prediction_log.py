"""The prediction log's group commit: one transaction for rows that arrive together."""

from __future__ import annotations

from concurrent.futures import Future

from sqlalchemy import select

from darkroom.db.engine import session_scope
from darkroom.db.models import Blob, Deployment, Prediction
from darkroom.serving.log_writer import PredictionLog
from tests.helpers import image_bytes


def _row(n: int) -> dict:
    return {"deployment_id": 1, "model_version_id": 1, "revision": 1, "queue_ms": 0.1,
            "inference_ms": 1.0, "total_ms": 2.0 + n, "width": 64, "height": 48,
            "shapes": [], "labels": "|", "max_score": None, "image_mime": "image/jpeg"}  # fmt: skip


def test_a_batch_of_sampled_and_unsampled_rows_is_stored_whole(app):
    """Rows with and without a sampled image in one batch: one insert must take both (it
    failed with 'a value is required for image_sha256' when only some rows carried one)."""
    with session_scope(app.state.sessions) as session:
        session.add(Deployment(organization_id=1, name="d", created_by=1))
    log = PredictionLog(app.state.engine, app.state.store)
    image = image_bytes()
    batch = [(_row(i), image if i % 2 else None, Future()) for i in range(4)]
    log._store(batch)
    ids = [future.result(timeout=5) for _, _, future in batch]
    log.close()
    with session_scope(app.state.sessions, write=False) as session:
        rows = session.scalars(select(Prediction).order_by(Prediction.id)).all()
        assert [r.id for r in rows] == ids
        assert [r.image_sha256 is not None for r in rows] == [False, True, False, True]
        assert session.get(Blob, rows[1].image_sha256).mime == "image/jpeg"
    assert app.state.store.read(rows[1].image_sha256) == image


def test_predictions_past_retention_are_deleted_and_their_images_collected(app):
    from datetime import timedelta

    from darkroom.db.models import DeploymentRevision, Model, ModelVersion, utcnow
    from darkroom.domain.blobs import collect_garbage
    from darkroom.domain.predictions import purge_expired

    with session_scope(app.state.sessions) as session:
        model = Model(organization_id=1, name="m")
        session.add(model)
        session.flush()
        session.add(Blob(sha256="0" * 64, size=1, mime="application/octet-stream"))
        version = ModelVersion(
            model_id=model.id, name="v", family="yolov8", labels=["a"], input_width=64,
            input_height=64, weights_sha256="0" * 64,
        )  # fmt: skip
        deployment = Deployment(organization_id=1, name="d", created_by=1, status="stopped")
        session.add_all([version, deployment])
        session.flush()
        revision = DeploymentRevision(deployment_id=deployment.id, number=1,
                                      model_version_id=version.id, created_by=1,
                                      settings={"retention_days": 7})  # fmt: skip
        session.add(revision)
        session.flush()
        deployment.revision_id = revision.id
    log = PredictionLog(app.state.engine, app.state.store)
    old, new = image_bytes(seed=1), image_bytes(seed=2)
    kept = log.write(_row(0), new).result(5)
    log.write({**_row(1), "created_at": utcnow() - timedelta(days=8)}, old).result(5)
    log.close()
    with session_scope(app.state.sessions) as session:
        assert purge_expired(session) == 1
    with session_scope(app.state.sessions) as session:
        [left] = session.scalars(select(Prediction))
        assert left.id == kept
        collected = collect_garbage(session, app.state.store, grace_s=0)
    assert app.state.store.read(left.image_sha256) == new
    assert len(collected.rows) == 1  # the expired prediction's image only
    assert not app.state.store.exists(collected.rows[0])
