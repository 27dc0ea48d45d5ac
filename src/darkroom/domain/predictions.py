"""The prediction log: every answered predict request of a deployment, and what is read from it
(pages filtered by time, label, score, model version; live figures; what a run reads).

Rows are written in batches by the serving layer's group commit (`darkroom.serving.log_writer`)
and deleted past their deployment's retention (`purge_expired`). Sampled images are blobs, and
stay referenced as long as their prediction row does.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.orm import Session

from darkroom.db.models import Asset, AuthorKind, Blob, Deployment, Prediction, utcnow
from darkroom.domain.accounts import Principal
from darkroom.domain.annotations import Author, ShapeIn, add_shapes
from darkroom.domain.assets import add_assets
from darkroom.domain.deployments import get_deployment
from darkroom.domain.labels import ensure_labels
from darkroom.domain.pagination import Page, PageRequest, paginate
from darkroom.errors import Conflict, InvalidInput, NotFound
from darkroom.figures import percentile
from darkroom.storage import BlobStore

__all__ = [
    "REVIEW_STATUSES",
    "LiveFigures",
    "PredictionFilter",
    "get_prediction",
    "label_field",
    "list_predictions",
    "live_figures",
    "purge_expired",
    "record_predictions",
    "review_predictions",
    "send_to_version",
]

# unreviewed: as served; accepted: right as it is; fixed: corrected in a dataset version;
# rejected: wrong, kept out of what is sent to versions.
REVIEW_STATUSES = ("unreviewed", "accepted", "fixed", "rejected")
MAX_REVIEW_IDS = 1000
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp",
              "image/bmp": ".bmp", "image/tiff": ".tif", "image/gif": ".gif"}  # fmt: skip
LIVE_ROWS_MAX = 100_000  # the live figures read at most this many of the newest rows
PURGE_BATCH = 5000


@dataclass(frozen=True, slots=True)
class PredictionFilter:
    since: datetime | None = None  # created_at >= since
    until: datetime | None = None  # created_at < until
    label: str | None = None  # has a shape of this label
    min_score: float | None = None  # has a shape scored at least this
    model_version_id: int | None = None
    review_status: str | None = None
    sampled: bool | None = None  # its image was kept

    def __post_init__(self) -> None:
        if self.since and self.until and self.since >= self.until:
            raise InvalidInput("since must be before until", details={"loc": ["since"]})
        if self.min_score is not None and not 0 <= self.min_score <= 1:
            raise InvalidInput("min_score must be between 0 and 1", details={"loc": ["min_score"]})


def label_field(shapes: list[dict[str, Any]]) -> str:
    """The `labels` column: each label of the shapes once, between bars ("|Text|Title|")."""
    return "|" + "".join(f"{name}|" for name in sorted({s["label"] for s in shapes}))


def record_predictions(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Inserts prediction rows (columns of `Prediction`) in one statement; their ids in order.
    On a Core connection: the ORM's session would double the cost of a row (0.4 -> 1 ms)."""
    if not rows:
        return []
    stmt = insert(Prediction).returning(Prediction.id, sort_by_parameter_order=True)
    return list(conn.execute(stmt, rows).scalars())


def _filtered(stmt: Any, flt: PredictionFilter) -> Any:
    if flt.since is not None:
        stmt = stmt.where(Prediction.created_at >= flt.since)
    if flt.until is not None:
        stmt = stmt.where(Prediction.created_at < flt.until)
    if flt.label is not None:
        stmt = stmt.where(Prediction.labels.contains(f"|{flt.label}|", autoescape=True))
    if flt.min_score is not None:
        stmt = stmt.where(Prediction.max_score >= flt.min_score)
    if flt.model_version_id is not None:
        stmt = stmt.where(Prediction.model_version_id == flt.model_version_id)
    if flt.review_status is not None:
        stmt = stmt.where(Prediction.review_status == flt.review_status)
    if flt.sampled is not None:
        column = Prediction.image_sha256
        stmt = stmt.where(column.is_not(None) if flt.sampled else column.is_(None))
    return stmt


def list_predictions(
    session: Session,
    principal: Principal,
    deployment_id: int | str,
    page: PageRequest,
    flt: PredictionFilter | None = None,
) -> Page[Prediction]:
    """A page of the deployment's predictions (newest first when the page asks)."""
    deployment = get_deployment(session, principal, deployment_id)
    stmt = select(Prediction).where(Prediction.deployment_id == deployment.id)
    return paginate(session, _filtered(stmt, flt or PredictionFilter()), Prediction.id, page)


@dataclass(frozen=True, slots=True)
class LiveFigures:
    """What the deployment page draws: the last `minutes` of traffic."""

    minutes: int
    requests: int
    per_minute: list[int]  # oldest minute first, the current one last
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    per_label: dict[str, int]
    by_model_version: dict[int, int]


def live_figures(
    session: Session, principal: Principal, deployment_id: int | str, minutes: int = 60
) -> LiveFigures:
    if not 1 <= minutes <= 24 * 60:
        raise InvalidInput("minutes must be between 1 and 1440", details={"loc": ["minutes"]})
    deployment = get_deployment(session, principal, deployment_id)
    now = utcnow()
    since = now - timedelta(minutes=minutes)
    stmt = (
        select(Prediction.created_at, Prediction.total_ms, Prediction.shapes,
               Prediction.model_version_id)
        .where(Prediction.deployment_id == deployment.id, Prediction.created_at >= since)
        .order_by(Prediction.id.desc())
        .limit(LIVE_ROWS_MAX)
    )  # fmt: skip
    rows = session.execute(stmt).all()
    per_minute = [0] * minutes
    per_label: Counter[str] = Counter()
    by_model: Counter[int] = Counter()
    latencies = []
    for created_at, total_ms, shapes, model_version_id in rows:
        age = int((now - created_at).total_seconds() // 60)
        per_minute[max(0, minutes - 1 - age)] += 1
        latencies.append(total_ms)
        by_model[model_version_id] += 1
        per_label.update(s["label"] for s in shapes)
    return LiveFigures(minutes, len(rows), per_minute, percentile(latencies, 50),
                       percentile(latencies, 95), dict(per_label.most_common()),
                       dict(by_model))  # fmt: skip


def purge_expired(session: Session, now: datetime | None = None) -> int:
    """Deletes predictions older than their deployment's `retention_days`, in batches; the
    sampled images they held become garbage for the blob collector."""
    now = now or utcnow()
    deleted = 0
    for deployment in session.scalars(select(Deployment)):
        days = deployment.revision.settings.get("retention_days") if deployment.revision else None
        if not days:
            continue
        cutoff = now - timedelta(days=days)
        while True:
            ids = list(session.scalars(
                select(Prediction.id).where(Prediction.deployment_id == deployment.id,
                                            Prediction.created_at < cutoff).limit(PURGE_BATCH)
            ))  # fmt: skip
            if not ids:
                break
            session.execute(delete(Prediction).where(Prediction.id.in_(ids)))
            deleted += len(ids)
    return deleted


def get_prediction(session: Session, principal: Principal, prediction_id: int) -> Prediction:
    found = session.get(Prediction, prediction_id)
    if found is None:
        raise NotFound.of("prediction", prediction_id)
    try:
        get_deployment(session, principal, found.deployment_id)
    except NotFound:
        raise NotFound.of("prediction", prediction_id) from None
    return found


def _chosen(
    session: Session, principal: Principal, deployment_id: int | str, ids: list[int]
) -> tuple[Deployment, list[Prediction]]:
    if not 1 <= len(ids) <= MAX_REVIEW_IDS:
        raise InvalidInput(f"give 1 to {MAX_REVIEW_IDS} prediction ids", details={"loc": ["ids"]})
    deployment = get_deployment(session, principal, deployment_id)
    found = {p.id: p for p in session.scalars(select(Prediction).where(
        Prediction.deployment_id == deployment.id, Prediction.id.in_(ids)))}  # fmt: skip
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"predictions {', '.join(map(str, missing[:10]))} are not this "
                       "deployment's", details={"ids": missing[:100]})  # fmt: skip
    return deployment, [found[i] for i in dict.fromkeys(ids)]


def review_predictions(
    session: Session, principal: Principal, deployment_id: int | str, ids: list[int], status: str
) -> list[Prediction]:
    """A person's verdict on served predictions (accept, reject, or back to unreviewed)."""
    if status not in REVIEW_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(REVIEW_STATUSES)}",
                           details={"loc": ["status"]})  # fmt: skip
    _, chosen = _chosen(session, principal, deployment_id, ids)
    for prediction in chosen:
        prediction.review_status = status
    session.flush()
    return chosen


def send_to_version(
    session: Session,
    store: BlobStore,
    principal: Principal,
    deployment_id: int | str,
    ids: list[int],
    version_id: int,
    *,
    max_pixels: int,
) -> list[Asset]:
    """The chosen predictions' images become assets of `version_id`, each with the predicted
    boxes, linked back in its metadata (deployment, prediction, model version). Accepted ones
    are written as the person's annotations (ground truth); the others as predictions, to be
    corrected in the asset editor, and are marked `fixed`. Rejected ones and those whose image
    was not sampled are refused (409), so nothing is sent half."""
    deployment, chosen = _chosen(session, principal, deployment_id, ids)
    refused = [p.id for p in chosen if p.image_sha256 is None or p.review_status == "rejected"]
    if refused:
        raise Conflict(
            f"predictions {', '.join(map(str, refused[:10]))} have no stored image or were "
            "rejected", code="not_sendable", details={"ids": refused[:100]},
        )  # fmt: skip
    files = []
    for p in chosen:
        blob = session.get(Blob, p.image_sha256)
        ext = EXTENSIONS.get(blob.mime if blob else "", "")
        files.append((f"{deployment.name}/prediction-{p.id}{ext}",
                      io.BytesIO(store.read(p.image_sha256 or ""))))  # fmt: skip
    assets = add_assets(session, store, principal, version_id, files, max_pixels=max_pixels)
    ensure_labels(session, version_id, sorted({s["label"] for p in chosen for s in p.shapes}))
    for prediction, asset in zip(chosen, assets, strict=True):
        asset.meta = {"deployment_id": deployment.id, "deployment": deployment.name,
                      "prediction_id": prediction.id,
                      "model_version_id": prediction.model_version_id}  # fmt: skip
        if prediction.review_status == "accepted":
            author = Author.of(principal)
        else:
            author = Author(AuthorKind.prediction, principal.user_id)
            prediction.review_status = "fixed"
        shapes = [ShapeIn(kind=s["kind"], label=s["label"], bbox=s["bbox"], score=s["score"])
                  for s in prediction.shapes]  # fmt: skip
        add_shapes(session, principal, asset.id, shapes, author=author)
    session.flush()
    return assets
