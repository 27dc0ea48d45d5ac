"""Annotations: each author's shapes on an asset, added to or replaced as a whole.

An author is a user or a run. Shapes name their label; only labels of the asset's version are
accepted. Rectangles are clipped to the image; a shape with no area left is refused.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import delete, distinct, func, insert, select
from sqlalchemy.orm import Session

from darkroom.db.models import (
    ACTIVE_STATUSES,
    Annotation,
    Asset,
    AuthorKind,
    FinishedAsset,
    Job,
    Label,
    Processing,
    ProcessingType,
    Run,
    Shape,
    ShapeKind,
    utcnow,
)
from darkroom.domain.accounts import Principal
from darkroom.domain.assets import get_asset
from darkroom.domain.blobs import insert_ignore
from darkroom.domain.jobs import get_job, get_run
from darkroom.domain.versions import get_version, in_organization
from darkroom.errors import Conflict, Forbidden, InvalidInput, NotFound
from darkroom.formats.masks import rle_counts
from darkroom.runtime.contract import MAX_ANNOTATION_ITEMS
from darkroom.values import ShapeIn

__all__ = [
    "Author",
    "ShapeIn",
    "ShapeLike",
    "add_many",
    "add_shapes",
    "annotated_assets",
    "annotations_of_assets",
    "bulk_add_shapes",
    "clear_previous_runs",
    "finished_by_earlier_runs",
    "list_annotations",
    "replace_shapes",
    "shape_rows",
    "shapes_of_assets",
]


@dataclass(frozen=True, slots=True)
class Author:
    kind: AuthorKind
    id: int

    @classmethod
    def of(cls, principal: Principal) -> Author:
        """Runs write as themselves, so their output is told apart from people's."""
        if principal.run_id is not None:
            return cls(AuthorKind.run, principal.run_id)
        return cls(AuthorKind.user, principal.user_id)


class ShapeLike(Protocol):
    """What validation reads of a shape: `ShapeIn`, or the API's `contract.Shape` as is."""

    @property
    def kind(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def bbox(self) -> Sequence[float] | None: ...
    @property
    def points(self) -> Sequence[Sequence[float]] | None: ...
    @property
    def score(self) -> float | None: ...
    @property
    def rings(self) -> Sequence[Sequence[Sequence[float]]] | None: ...
    @property
    def mask(self) -> dict[str, Any] | None: ...
    @property
    def keypoints(self) -> Sequence[Sequence[float]] | None: ...
    @property
    def attributes(self) -> dict[str, Any] | None: ...


EMPTY_GEOMETRY: dict[str, Any] = {"x": None, "y": None, "w": None, "h": None, "points": None,
                                  "rings": None, "mask": None}  # fmt: skip
MAX_POINTS = 100_000
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_TEXT = 1000


def _bad(index: int, message: str, field_name: str | None = None) -> InvalidInput:
    loc: list[Any] = ["shapes", index] + ([field_name] if field_name else [])
    return InvalidInput(f"shape {index}: {message}", code="invalid_shape", details={"loc": loc})


def _finite(values: Sequence[float]) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) for v in values)


def shape_rows(
    shapes: Sequence[ShapeLike], labels: dict[str, int], width: int, height: int
) -> list[dict[str, Any]]:
    """Validates shapes against the version's labels (lower-cased name → id) and the image size.

    Returns rows for the `shapes` table (without `annotation_id`), every row with every
    column, so that they can be inserted with one executemany.
    """
    rows: list[dict[str, Any]] = []
    for i, s in enumerate(shapes):
        if s.kind not in ShapeKind.__members__:
            raise _bad(i, f"unknown kind {s.kind!r} (one of {', '.join(ShapeKind)})", "kind")
        label_id = labels.get(s.label.lower())
        if label_id is None:
            raise _bad(i, f"the version has no label {s.label!r}", "label")
        if s.score is not None and not (_finite([s.score]) and 0.0 <= s.score <= 1.0):
            raise _bad(i, "score must be between 0 and 1", "score")
        row: dict[str, Any] = dict(EMPTY_GEOMETRY, label_id=label_id, kind=s.kind, score=s.score)
        if s.kind in (ShapeKind.rectangle, ShapeKind.mask):
            if s.bbox is None or len(s.bbox) != 4 or not _finite(s.bbox):
                raise _bad(i, f"a {s.kind} needs bbox [x, y, w, h] of 4 numbers", "bbox")
            x, y, w, h = (float(v) for v in s.bbox)
            x0, y0 = max(0.0, x), max(0.0, y)
            x1, y1 = min(float(width), x + w), min(float(height), y + h)
            if x1 - x0 <= 0 or y1 - y0 <= 0:
                raise _bad(i, f"{s.kind} has no area inside the image", "bbox")
            row.update(x=x0, y=y0, w=x1 - x0, h=y1 - y0)
            if s.kind == ShapeKind.mask:
                row["mask"] = _rle(i, s.mask, width, height)
        elif s.kind == ShapeKind.polygon and s.rings:
            rings = [_points(i, ring, 3, width, height, "rings", "each ring of a polygon")
                     for ring in s.rings]  # fmt: skip
            row["points"] = rings[0]
            row["rings"] = rings if len(rings) > 1 else None
        elif s.kind in (ShapeKind.polygon, ShapeKind.point):
            row["points"] = _points(i, s.points or [], 3 if s.kind == "polygon" else 1,
                                    width, height, "points", f"a {s.kind}")  # fmt: skip
            if s.kind == ShapeKind.point and len(row["points"]) != 1:
                raise _bad(i, "a point has exactly one [x, y]", "points")
        row["keypoints"] = _keypoints(i, s.keypoints) if s.keypoints else None
        row["attributes"] = _attributes(i, s.attributes) if s.attributes else None
        rows.append(row)
    return rows


def _points(
    i: int,
    pts: Sequence[Sequence[float]],
    need: int,
    width: int,
    height: int,
    name: str,
    what: str,
) -> list[list[float]]:
    """Points clipped to the image; at least `need` of them."""
    if len(pts) < need or len(pts) > MAX_POINTS or any(len(p) != 2 or not _finite(p) for p in pts):
        raise _bad(i, f"{what} needs at least {need} [x, y] points", name)
    return [[min(max(0.0, float(x)), width), min(max(0.0, float(y)), height)] for x, y in pts]


def _keypoints(i: int, kps: Sequence[Sequence[float]]) -> list[list[float]]:
    """[[x, y, v], …] with COCO's visibility v: 0 not labelled, 1 labelled but hidden, 2 seen.
    Not clipped: a hidden keypoint may lie outside the image."""
    if len(kps) > MAX_POINTS or any(len(k) != 3 or not _finite(k) for k in kps):
        raise _bad(i, "keypoints are [[x, y, v], …] of numbers", "keypoints")
    if any(k[2] not in (0, 1, 2) for k in kps):
        raise _bad(i, "a keypoint's visibility v is 0, 1 or 2", "keypoints")
    return [[float(x), float(y), int(v)] for x, y, v in kps]


def _attributes(i: int, attributes: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(attributes, dict) or len(attributes) > MAX_ATTRIBUTES:
        raise _bad(i, f"attributes: an object of at most {MAX_ATTRIBUTES} entries", "attributes")
    for key, value in attributes.items():
        if key == "parts":  # the parts of an object (VOC's person layout: head, hand, foot)
            _parts(i, value)
            continue
        ok = (
            value is None
            or isinstance(value, bool | int)
            or (isinstance(value, float) and math.isfinite(value))
            or (isinstance(value, str) and len(value) <= MAX_ATTRIBUTE_TEXT)
        )
        if not isinstance(key, str) or not 0 < len(key) <= 100 or not ok:
            raise _bad(i, f"attribute {str(key)[:100]!r}: a name of 1-100 characters and a "
                          "number, a boolean or a short text", "attributes")  # fmt: skip
    return dict(attributes)


def _parts(i: int, parts: Any) -> None:
    """`[{"name": "head", "bbox": [x, y, w, h]}, …]`: named boxes that belong to their object
    and are not objects of their own (nor labels of the version)."""
    ok = isinstance(parts, list) and len(parts) <= MAX_ATTRIBUTES and all(
        isinstance(p, dict) and set(p) == {"name", "bbox"}
        and isinstance(p["name"], str) and 0 < len(p["name"]) <= 100
        and isinstance(p["bbox"], list) and len(p["bbox"]) == 4
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in p["bbox"])
        for p in parts
    )  # fmt: skip
    if not ok:
        raise _bad(i, f'attribute "parts": at most {MAX_ATTRIBUTES} '
                      '{"name": text, "bbox": [x, y, w, h]}', "attributes")  # fmt: skip


def _rle(i: int, mask: dict[str, Any] | None, width: int, height: int) -> dict[str, Any]:
    """A COCO run-length encoding of the whole image: `counts` as COCO's compressed string or
    a list of run lengths that add up to its pixels."""
    if not isinstance(mask, dict) or set(mask) != {"size", "counts"}:
        raise _bad(i, "a mask needs mask {size: [height, width], counts}", "mask")
    if mask["size"] != [height, width]:
        raise _bad(i, f"mask size {mask['size']} is not the image's [{height}, {width}]", "mask")
    counts = mask["counts"]
    if isinstance(counts, list):
        if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
            raise _bad(i, "mask counts: run lengths are integers ≥ 0", "mask")
        if sum(counts) != width * height:
            raise _bad(i, f"mask counts add up to {sum(counts)}, not {width * height}", "mask")
    elif isinstance(counts, str) and len(counts) <= 8 * width * height:
        try:
            total = sum(rle_counts(counts))
        except ValueError as exc:
            raise _bad(i, f"mask counts: {exc}", "mask") from exc
        if total != width * height:
            raise _bad(i, f"mask counts add up to {total}, not {width * height}", "mask")
    else:
        raise _bad(i, "mask counts: COCO's compressed string or a list of run lengths", "mask")
    return {"size": [height, width], "counts": counts}


def _labels_of(session: Session, version_id: int) -> dict[str, int]:
    rows = session.execute(select(Label.name, Label.id).where(Label.version_id == version_id))
    return {name.lower(): label_id for name, label_id in rows}


def list_annotations(session: Session, principal: Principal, asset_id: int) -> list[Annotation]:
    get_asset(session, principal, asset_id)
    stmt = select(Annotation).where(Annotation.asset_id == asset_id).order_by(Annotation.id)
    return list(session.scalars(stmt))


def annotations_of_assets(
    session: Session, principal: Principal, version_id: int, asset_ids: Sequence[int]
) -> list[Annotation]:
    """Every author's annotations of many assets of a version, by asset then annotation;
    ids not in the version are left out."""
    if len(asset_ids) > MAX_ANNOTATION_ITEMS:
        raise InvalidInput(
            f"at most {MAX_ANNOTATION_ITEMS} assets at once", details={"loc": ["asset_ids"]}
        )
    get_version(session, principal, version_id)
    stmt = (
        select(Annotation)
        .join(Asset, Asset.id == Annotation.asset_id)
        .where(Asset.version_id == version_id, Annotation.asset_id.in_(list(asset_ids)))
        .order_by(Annotation.asset_id, Annotation.id)
    )
    return list(session.scalars(stmt))


def add_shapes(
    session: Session,
    principal: Principal,
    asset_id: int,
    shapes: Sequence[ShapeLike],
    *,
    author: Author | None = None,
    replace: bool = False,
    status: str = "complete",
) -> Annotation:
    """Adds shapes to the author's annotation of the asset (the caller's by default).

    With `replace`, the author's previous shapes are removed first; other authors' are never
    touched. Returns the author's annotation.
    """
    asset = get_asset(session, principal, asset_id)
    author = author or Author.of(principal)
    rows = shape_rows(shapes, _labels_of(session, asset.version_id), asset.width, asset.height)
    annotation = session.scalar(
        select(Annotation).where(
            Annotation.asset_id == asset.id,
            Annotation.author_kind == author.kind,
            Annotation.author_id == author.id,
        )
    )
    if annotation is None:
        annotation = Annotation(
            asset_id=asset.id, author_kind=author.kind, author_id=author.id, status=status
        )
        session.add(annotation)
        session.flush()
    elif replace:
        session.execute(delete(Shape).where(Shape.annotation_id == annotation.id))
    annotation.status = status
    annotation.updated_at = utcnow()
    if rows:
        session.execute(insert(Shape), [{**r, "annotation_id": annotation.id} for r in rows])
    session.flush()
    session.expire(annotation, ["shapes"])
    return annotation


def add_many(
    session: Session,
    principal: Principal,
    items: Sequence[tuple[int, Sequence[ShapeLike]]],
    *,
    done: Sequence[int] = (),
) -> int:
    """Adds shapes to many assets as the caller (a run writes as itself); all or nothing.

    Every shape is validated first; a bad one answers 422 with its item and shape index. For a
    run, the items' assets and `done` (assets it finished without shapes) are marked finished
    by it in the same transaction: what a resumed re-run skips.
    """
    if len(items) + len(done) > MAX_ANNOTATION_ITEMS:
        raise InvalidInput(
            f"at most {MAX_ANNOTATION_ITEMS} assets per batch", details={"loc": ["items"]}
        )
    wanted = {asset_id for asset_id, _ in items} | set(done)
    found = {
        a.id: a
        for a in session.scalars(
            in_organization(select(Asset).where(Asset.id.in_(wanted)), Asset.version_id, principal)
        )
    }
    for asset_id in [*(a for a, _ in items), *done]:
        if asset_id not in found:
            raise NotFound.of("asset", asset_id)
    labels_by_version: dict[int, dict[str, int]] = {}
    for version_id in sorted({a.version_id for a in found.values()}):
        get_version(session, principal, version_id)  # a run: Forbidden outside its job
        labels_by_version[version_id] = _labels_of(session, version_id)
    rows_by_asset: list[tuple[int, list[dict[str, Any]]]] = []
    for n, (asset_id, shapes) in enumerate(items):
        asset = found[asset_id]
        try:
            rows = shape_rows(
                shapes, labels_by_version[asset.version_id], asset.width, asset.height
            )
        except InvalidInput as exc:
            exc.details = {"loc": ["items", n, *exc.details["loc"]]}
            exc.message = f"item {n} (asset {asset_id}): {exc.message}"
            raise
        rows_by_asset.append((asset.id, rows))
    added = bulk_add_shapes(session, Author.of(principal), rows_by_asset)
    if principal.run_id is not None:
        marks = [{"run_id": principal.run_id, "asset_id": a} for a in sorted(wanted)]
        insert_ignore(session, FinishedAsset, marks)  # a retried batch marks nothing twice
    return added


def finished_by_earlier_runs(session: Session, principal: Principal, run_id: int) -> list[int]:
    """Asset ids the earlier runs of this run's job finished, ascending: what `resume` skips."""
    run = get_run(session, principal, run_id)
    earlier = select(Run.id).where(Run.job_id == run.job_id, Run.id != run.id)
    return list(
        session.scalars(
            select(FinishedAsset.asset_id)
            .where(FinishedAsset.run_id.in_(earlier))
            .distinct()
            .order_by(FinishedAsset.asset_id)
        )
    )


def bulk_add_shapes(
    session: Session, author: Author, items: Sequence[tuple[int, list[dict[str, Any]]]]
) -> int:
    """Appends validated shape rows to many assets at once (imports, processings).

    `items` are (asset_id, rows from `shape_rows`); the caller has checked access to the
    assets. Returns the number of shapes written.
    """
    merged: dict[int, list[dict[str, Any]]] = {}
    for asset_id, rows in items:  # an asset named twice gets one annotation
        if rows:
            merged.setdefault(asset_id, []).extend(rows)
    items = list(merged.items())
    if not items:
        return 0
    asset_ids = list(merged)
    existing = dict(
        session.execute(
            select(Annotation.asset_id, Annotation.id).where(
                Annotation.asset_id.in_(asset_ids),
                Annotation.author_kind == author.kind,
                Annotation.author_id == author.id,
            )
        ).all()
    )
    missing = [a for a in asset_ids if a not in existing]
    if missing:
        table = Annotation.__table__
        new_ids = session.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True),
            [{"asset_id": a, "author_kind": author.kind, "author_id": author.id} for a in missing],
        ).scalars()
        existing.update(zip(missing, new_ids, strict=True))
    shape_values = [
        {**row, "annotation_id": existing[asset_id]} for asset_id, rows in items for row in rows
    ]
    session.execute(insert(Shape.__table__), shape_values)
    return len(shape_values)


def replace_shapes(session: Session, author: Author, asset_ids: Sequence[int]) -> int:
    """Deletes the author's shapes on these assets (before writing theirs again); returns how
    many. Other authors' shapes are never touched."""
    mine = select(Annotation.id).where(
        Annotation.asset_id.in_(list(asset_ids)),
        Annotation.author_kind == author.kind,
        Annotation.author_id == author.id,
    )
    return session.execute(delete(Shape).where(Shape.annotation_id.in_(mine))).rowcount or 0


def annotated_assets(
    session: Session, asset_ids: Sequence[int], author: Author | None = None
) -> set[int]:
    """Those of `asset_ids` that carry at least one shape, by `author` or by anyone."""
    stmt = (
        select(Annotation.asset_id)
        .join(Shape, Shape.annotation_id == Annotation.id)
        .where(Annotation.asset_id.in_(list(asset_ids)))
        .distinct()
    )
    if author is not None:
        stmt = stmt.where(Annotation.author_kind == author.kind, Annotation.author_id == author.id)
    return set(session.scalars(stmt))


def clear_previous_runs(
    session: Session, principal: Principal, run_id: int, *, earlier_jobs: bool = False
) -> int:
    """Deletes the annotations written by the earlier runs of this run's job; returns how many.

    How a re-run of a pre-annotation replaces its previous output. With `earlier_jobs`, also
    the boxes of every other pre-annotation job on this version's assets: its own earlier jobs'
    and those a copy brought from its parent (a new pre-annotation replaces them instead of
    doubling them). Only this version's assets are touched (a copy's boxes stay when its
    parent is pre-annotated again); people's annotations never, nor other kinds of jobs'.
    """
    run = get_run(session, principal, run_id)
    earlier = select(Run.id).where(Run.job_id == run.job_id, Run.id != run.id)
    authors = earlier
    if earlier_jobs:
        authors = earlier.union(_preannotation_runs(except_job=run.job_id))
    stmt = delete(Annotation).where(Annotation.author_kind == AuthorKind.run,
                                    Annotation.author_id.in_(authors))  # fmt: skip
    if run.job.target_version_id is not None:
        stmt = stmt.where(Annotation.asset_id.in_(_assets_of(run.job.target_version_id)))
    deleted = int(session.execute(stmt).rowcount or 0)
    session.execute(delete(FinishedAsset).where(FinishedAsset.run_id.in_(earlier)))
    return deleted


def _preannotation_runs(except_job: int | None = None) -> Any:
    """Runs of pre-annotation jobs, on whichever version (a SELECT of their ids): a version
    copied from a pre-annotated one carries its boxes, still authored by the run that drew
    them on the parent, so what a version holds is found by its assets, not by its jobs."""
    stmt = (
        select(Run.id)
        .join(Job, Job.id == Run.job_id)
        .join(Processing, Processing.id == Job.processing_id)
        .where(Processing.type == ProcessingType.pre_annotation)
    )
    return stmt if except_job is None else stmt.where(Job.id != except_job)


def _assets_of(version_id: int) -> Any:
    return select(Asset.id).where(Asset.version_id == version_id)


def delete_shape(session: Session, principal: Principal, shape_id: int) -> int:
    """Deletes one shape, whoever drew it (a person cleaning up a pre-annotation), and its
    annotation when it was the last; returns its asset's id. Runs cannot: they replace their
    own output."""
    if principal.is_run:
        raise Forbidden("a run token cannot delete shapes")
    found = session.execute(
        select(Shape, Annotation).join(Annotation, Annotation.id == Shape.annotation_id)
        .where(Shape.id == shape_id)
    ).first()  # fmt: skip
    if found is None:
        raise NotFound.of("shape", shape_id)
    _, annotation = found
    asset_id, annotation_id = annotation.asset_id, annotation.id
    get_asset(session, principal, asset_id)  # 404 outside the caller's organization
    session.execute(delete(Shape).where(Shape.id == shape_id))
    left = session.scalar(select(Shape.id).where(Shape.annotation_id == annotation_id).limit(1))
    if left is None:
        session.execute(delete(Annotation).where(Annotation.id == annotation_id))
    return asset_id


def _written_by_job(job: Job) -> Any:
    """A filter of the annotations the job's runs wrote on its own version."""
    return (
        (Annotation.author_kind == AuthorKind.run)
        & Annotation.author_id.in_(select(Run.id).where(Run.job_id == job.id))
        & Annotation.asset_id.in_(
            select(Asset.id).where(Asset.version_id == job.target_version_id)
        )
    )  # fmt: skip


def job_shape_count(session: Session, principal: Principal, job_id: int) -> int:
    """How many shapes the job's runs wrote on its version (what removing them removes)."""
    return _count_written(session, get_job(session, principal, job_id))


def _count_written(session: Session, job: Job) -> int:
    return int(
        session.scalar(
            select(func.count(Shape.id))
            .join(Annotation, Annotation.id == Shape.annotation_id)
            .where(_written_by_job(job))
        )
        or 0
    )


def remove_job_annotations(session: Session, principal: Principal, job_id: int) -> int:
    """Deletes every annotation the job's runs wrote on its version; returns how many shapes
    went. Refused (409) while a run of the job is active: it would write more. People's
    annotations, other jobs' and the versions the job produced are left as they are."""
    job = get_job(session, principal, job_id)
    if any(run.status in ACTIVE_STATUSES for run in job.runs):
        raise Conflict(
            f"job {job_id} has a pending or running run: cancel it or wait for its end",
            code="job_active",
        )
    count = _count_written(session, job)
    session.execute(delete(Annotation).where(_written_by_job(job)))
    earlier = select(Run.id).where(Run.job_id == job.id)
    session.execute(delete(FinishedAsset).where(FinishedAsset.run_id.in_(earlier)))
    return count


def preannotated_assets(session: Session, version_id: int) -> int:
    """How many assets of the version carry shapes of its pre-annotation jobs' runs."""
    return int(
        session.scalar(
            select(func.count(distinct(Annotation.asset_id)))
            .join(Shape, Shape.annotation_id == Annotation.id)
            .where(
                Annotation.author_kind == AuthorKind.run,
                Annotation.author_id.in_(_preannotation_runs()),
                Annotation.asset_id.in_(_assets_of(version_id)),
            )
        )
        or 0
    )


def shapes_of_assets(session: Session, asset_ids: Sequence[int]) -> dict[int, list[Shape]]:
    """Every author's shapes of many assets at once (the assets grid draws them)."""
    out: dict[int, list[Shape]] = {asset_id: [] for asset_id in asset_ids}
    if not asset_ids:
        return out
    rows = session.execute(
        select(Annotation.asset_id, Shape)
        .join(Shape, Shape.annotation_id == Annotation.id)
        .where(Annotation.asset_id.in_(list(asset_ids)))
        .order_by(Shape.id)
    )
    for asset_id, shape in rows:
        out[asset_id].append(shape)
    return out
