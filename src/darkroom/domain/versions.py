"""Dataset versions: created empty or as a copy of another version (rows copied, bytes not)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, insert, select
from sqlalchemy.orm import Session

from darkroom.db.models import (
    SHAPE_DATA,
    Annotation,
    Asset,
    AssetTag,
    Dataset,
    DatasetVersion,
    Label,
    Shape,
)
from darkroom.domain.accounts import Principal
from darkroom.domain.datasets import check_tags, get_dataset
from darkroom.domain.pagination import Page, PageRequest, paginate
from darkroom.errors import Conflict, Forbidden, InvalidInput, NotFound
from darkroom.text import check_name

__all__ = [
    "LabelCount",
    "VersionStats",
    "asset_counts",
    "create_output_version",
    "create_version",
    "delete_version",
    "get_version",
    "get_writable_version",
    "in_organization",
    "list_versions",
    "recent_version_titles",
    "update_version",
    "version_stats",
    "version_titles",
]

COPY_CHUNK = 2000


@dataclass(frozen=True, slots=True)
class LabelCount:
    label_id: int
    name: str
    color: str
    shapes: int


@dataclass(frozen=True, slots=True)
class VersionStats:
    assets: int
    annotated_assets: int
    shapes: int
    labels: list[LabelCount]


def in_organization(stmt: Select[Any], version_id: Any, principal: Principal) -> Select[Any]:
    """Restricts `stmt` over a version's rows (labels, assets) to the caller's organization.

    The one place that says what "belongs to the caller" means for everything in a version.
    """
    return (
        stmt.join(DatasetVersion, DatasetVersion.id == version_id)
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .where(Dataset.organization_id == principal.organization_id)
    )


def get_version(session: Session, principal: Principal, version_id: int) -> DatasetVersion:
    version = session.scalar(
        select(DatasetVersion)
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .where(
            DatasetVersion.id == version_id, Dataset.organization_id == principal.organization_id
        )
    )
    if version is None:
        raise NotFound.of("version", version_id)
    if not _run_may_use(principal, version):
        raise Forbidden(f"this run's token cannot reach version {version_id}")
    return version


def get_writable_version(session: Session, principal: Principal, version_id: int) -> DatasetVersion:
    """The version, if the caller may change its assets: a run only the versions its own job
    produced (its outputs), never its input."""
    version = get_version(session, principal, version_id)
    if principal.is_run and version.produced_by_job_id != principal.job_id:
        raise Forbidden(
            f"a run writes only to its job's output versions; version {version_id} is its input"
        )
    return version


def version_titles(session: Session, principal: Principal, ids: set[int]) -> dict[int, str]:
    """Version id -> "dataset / version" for many versions in one query (lists show them)."""
    if not ids:
        return {}
    stmt = (
        select(DatasetVersion.id, Dataset.name, DatasetVersion.name)
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .where(DatasetVersion.id.in_(ids), Dataset.organization_id == principal.organization_id)
    )
    return {vid: f"{ds} / {name}" for vid, ds, name in session.execute(stmt)}


def asset_counts(session: Session, version_ids: set[int]) -> dict[int, int]:
    """Version id -> its number of assets, for many versions in one query."""
    if not version_ids:
        return {}
    stmt = (select(Asset.version_id, func.count(Asset.id))
            .where(Asset.version_id.in_(version_ids)).group_by(Asset.version_id))  # fmt: skip
    return {version_id: n for version_id, n in session.execute(stmt)}


def recent_version_titles(
    session: Session, principal: Principal, limit: int = 500
) -> list[tuple[int, str]]:
    """(id, "dataset / version") of the organization's newest versions (a picker offers them)."""
    stmt = (
        select(DatasetVersion.id, Dataset.name, DatasetVersion.name)
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .where(
            Dataset.organization_id == principal.organization_id,
            DatasetVersion.preview_of_id.is_(None),
        )
        .order_by(DatasetVersion.id.desc())
        .limit(limit)
    )
    return [(vid, f"{ds} / {name}") for vid, ds, name in session.execute(stmt)]


def _run_may_use(principal: Principal, version: DatasetVersion) -> bool:
    """A run token reaches its job's target version and the versions its job produced."""
    if not principal.is_run:
        return True
    return version.id == principal.target_version_id or (
        version.produced_by_job_id is not None and version.produced_by_job_id == principal.job_id
    )


def list_versions(
    session: Session, principal: Principal, dataset_id: int, page: PageRequest
) -> Page[DatasetVersion]:
    """The dataset's versions, without previews' scratch copies."""
    get_dataset(session, principal, dataset_id)
    stmt = select(DatasetVersion).where(
        DatasetVersion.dataset_id == dataset_id, DatasetVersion.preview_of_id.is_(None)
    )
    return paginate(session, stmt, DatasetVersion.id, page)


def _name_taken(session: Session, dataset_id: int, name: str) -> bool:
    stmt = select(DatasetVersion.id).where(
        DatasetVersion.dataset_id == dataset_id, DatasetVersion.name == name
    )
    return session.scalar(stmt) is not None


def create_version(
    session: Session,
    principal: Principal,
    dataset_id: int,
    name: str,
    *,
    description: str = "",
    parent_version_id: int | None = None,
    produced_by_job_id: int | None = None,
    copy_parent: bool = True,
    only: set[int] | None = None,
    tags: Mapping[int, list[str]] | None = None,
) -> DatasetVersion:
    """A new version; with a parent, its labels, assets, tags and annotations are copied
    (only its labels when `copy_parent` is False: lineage without the rows; only the assets in
    `only` when given, each with the extra `tags` given for it)."""
    dataset = get_dataset(session, principal, dataset_id)
    name = check_name(name, "version")
    if _name_taken(session, dataset.id, name):
        raise Conflict(
            f"dataset {dataset.name!r} already has a version named {name!r}", code="already_exists"
        )
    parent = get_version(session, principal, parent_version_id) if parent_version_id else None
    version = DatasetVersion(
        dataset_id=dataset.id,
        name=name,
        description=description,
        parent_version_id=parent.id if parent else None,
        produced_by_job_id=produced_by_job_id,
    )
    session.add(version)
    session.flush()
    if parent is not None:
        _copy_rows(
            session, parent.id, version.id, labels_only=not copy_parent, only=only, tags=tags
        )
    return version


def create_output_version(
    session: Session,
    principal: Principal,
    name: str,
    *,
    description: str = "",
    copy_input: bool = True,
    asset_ids: Sequence[int] | None = None,
    tags: Mapping[int, Sequence[str]] | None = None,
) -> DatasetVersion:
    """A version produced by the caller's run: in the input's dataset, with the input as parent.

    With `copy_input`, the input's labels and assets with their tags and annotations are
    copied: all of them, or only `asset_ids` (a selection such as a deduplicated or sampled
    subset, which must be input assets), each with the extra `tags` given for it."""
    if principal.target_version_id is None or principal.job_id is None:
        raise Forbidden("only a run's token creates output versions")
    source = get_version(session, principal, principal.target_version_id)
    only = None
    if asset_ids is not None:
        only = set(asset_ids)
        found = set(session.scalars(
            select(Asset.id).where(Asset.version_id == source.id, Asset.id.in_(list(only)))
        ))  # fmt: skip
        if missing := sorted(only - found)[:5]:
            raise InvalidInput(f"assets {missing} are not in the input version",
                               details={"loc": ["asset_ids"]})  # fmt: skip
    extra = {asset_id: check_tags(t) for asset_id, t in (tags or {}).items()}
    if source.preview_of_id is not None:  # a preview's output: hidden, named after its input
        name = f"{source.name}-{check_name(name, 'version')}"[:200]
    version = create_version(
        session, principal, source.dataset_id, name, description=description,
        parent_version_id=source.id, produced_by_job_id=principal.job_id, copy_parent=copy_input,
        only=only, tags=extra,
    )  # fmt: skip
    version.preview_of_id = source.preview_of_id
    return version


def update_version(
    session: Session,
    principal: Principal,
    version_id: int,
    *,
    name: str | None = None,
    description: str | None = None,
) -> DatasetVersion:
    version = get_version(session, principal, version_id)
    if name is not None:
        name = check_name(name, "version")
        if name != version.name and _name_taken(session, version.dataset_id, name):
            raise Conflict(f"a version named {name!r} already exists", code="already_exists")
        version.name = name
    if description is not None:
        version.description = description
    session.flush()
    return version


def delete_version(session: Session, principal: Principal, version_id: int) -> None:
    session.delete(get_version(session, principal, version_id))
    session.flush()


def version_stats(session: Session, principal: Principal, version_id: int) -> VersionStats:
    get_version(session, principal, version_id)
    assets = session.scalar(select(func.count(Asset.id)).where(Asset.version_id == version_id))
    annotated = session.scalar(
        select(func.count(func.distinct(Annotation.asset_id)))
        .join(Shape, Shape.annotation_id == Annotation.id)
        .join(Label, Label.id == Shape.label_id)
        .where(Label.version_id == version_id)
    )
    rows = session.execute(
        select(Label.id, Label.name, Label.color, func.count(Shape.id))
        .outerjoin(Shape, Shape.label_id == Label.id)
        .where(Label.version_id == version_id)
        .group_by(Label.id, Label.name, Label.color, Label.position)
        .order_by(Label.position, Label.id)
    ).all()
    labels = [LabelCount(r[0], r[1], r[2], r[3]) for r in rows]
    return VersionStats(assets or 0, annotated or 0, sum(c.shapes for c in labels), labels)


def _insert_returning_ids(session: Session, model: Any, rows: list[dict[str, Any]]) -> list[int]:
    if not rows:
        return []
    result = session.execute(insert(model).returning(model.id, sort_by_parameter_order=True), rows)
    return list(result.scalars())


def _copy_rows(
    session: Session,
    source_id: int,
    target_id: int,
    *,
    labels_only: bool,
    only: set[int] | None = None,
    tags: Mapping[int, list[str]] | None = None,
) -> None:
    """Copies labels, assets, tags, annotations and shapes in chunks, remapping ids: every
    asset, or those in `only`, each with its tags and the extra `tags` given for it."""
    labels = session.scalars(select(Label).where(Label.version_id == source_id)).all()
    new_label_ids = _insert_returning_ids(
        session,
        Label,
        [
            {"version_id": target_id, "name": x.name, "color": x.color, "position": x.position,
             "external_id": x.external_id, "keypoints": x.keypoints}
            for x in labels
        ],
    )  # fmt: skip
    label_map = dict(zip((x.id for x in labels), new_label_ids, strict=True))
    if labels_only:
        return

    asset_cols = (Asset.id, Asset.blob_sha256, Asset.filename, Asset.mime, Asset.width,
                  Asset.height, Asset.meta, Asset.created_at)  # fmt: skip
    after = 0
    while True:
        chunk = session.execute(
            select(*asset_cols)
            .where(Asset.version_id == source_id, Asset.id > after)
            .order_by(Asset.id)
            .limit(COPY_CHUNK)
        ).all()
        if not chunk:
            return
        after = chunk[-1].id
        if only is not None:
            chunk = [a for a in chunk if a.id in only]
            if not chunk:
                continue
        new_ids = _insert_returning_ids(
            session,
            Asset,
            [
                {
                    "version_id": target_id,
                    "blob_sha256": a.blob_sha256,
                    "filename": a.filename,
                    "mime": a.mime,
                    "width": a.width,
                    "height": a.height,
                    "meta": a.meta,
                    "created_at": a.created_at,
                }
                for a in chunk
            ],
        )
        asset_map = dict(zip((a.id for a in chunk), new_ids, strict=True))
        old_ids = list(asset_map)

        tag_rows = {
            (asset_map[asset_id], tag)
            for asset_id, tag in session.execute(
                select(AssetTag.asset_id, AssetTag.tag).where(AssetTag.asset_id.in_(old_ids))
            )
        }
        for asset_id in old_ids:
            tag_rows.update((asset_map[asset_id], tag) for tag in (tags or {}).get(asset_id, ()))
        if tag_rows:
            session.execute(
                insert(AssetTag), [{"asset_id": a, "tag": t} for a, t in sorted(tag_rows)]
            )

        anns = session.execute(
            select(Annotation.id, Annotation.asset_id, Annotation.author_kind,
                   Annotation.author_id, Annotation.status, Annotation.created_at)
            .where(Annotation.asset_id.in_(old_ids))
        ).all()  # fmt: skip
        new_ann_ids = _insert_returning_ids(
            session,
            Annotation,
            [
                {
                    "asset_id": asset_map[a.asset_id],
                    "author_kind": a.author_kind,
                    "author_id": a.author_id,
                    "status": a.status,
                    "created_at": a.created_at,
                }
                for a in anns
            ],
        )
        ann_map = dict(zip((a.id for a in anns), new_ann_ids, strict=True))
        if not ann_map:
            continue
        shapes = session.execute(
            select(Shape.annotation_id, *(getattr(Shape, c) for c in SHAPE_DATA)).where(
                Shape.annotation_id.in_(list(ann_map))
            )
        ).all()
        if shapes:
            session.execute(
                insert(Shape),
                [
                    {**s._asdict(), "annotation_id": ann_map[s.annotation_id],
                     "label_id": label_map[s.label_id]}
                    for s in shapes
                ],
            )  # fmt: skip
