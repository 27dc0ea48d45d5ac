"""Assets: images of a version, each pointing at a content-addressed blob.

Bytes are stored (and hashed) before any row is written, and the rows are written in the
caller's transaction, so an interrupted upload never leaves an asset without its blob.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session

from darkroom.db.models import (
    Annotation,
    Asset,
    AssetTag,
    AuthorKind,
    Label,
    Shape,
)
from darkroom.domain.accounts import Principal
from darkroom.domain.blobs import register_blobs
from darkroom.domain.datasets import check_tags
from darkroom.domain.images import probe_image
from darkroom.domain.pagination import Page, PageRequest, paginate
from darkroom.domain.versions import get_version, get_writable_version, in_organization
from darkroom.errors import Conflict, InvalidInput, NotFound
from darkroom.runtime.contract import MAX_BATCH_IMAGES
from darkroom.storage import BlobStore
from darkroom.text import has_control_characters, is_number

__all__ = [
    "AssetFilter",
    "add_asset",
    "add_assets",
    "clean_filename",
    "delete_asset",
    "get_asset",
    "get_assets",
    "list_assets",
    "update_asset",
    "version_tags",
]


@dataclass(frozen=True, slots=True)
class AssetFilter:
    label: str | None = None  # a label id or name in the version
    tag: str | None = None
    annotated: bool | None = None
    human_annotated: bool | None = None  # has shapes from a person (not from a run)
    run_annotated: bool | None = None  # has shapes written by a run


def clean_filename(name: str) -> str:
    """A relative POSIX path without `..`, `.` or empty parts; refuses names that escape."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts or has_control_characters(name):
        raise InvalidInput(f"invalid file name {name!r}", details={"filename": name})
    cleaned = posixpath.join(*parts)
    if len(cleaned) > 500:
        raise InvalidInput(f"file name longer than 500 characters: {name[:60]}…")
    return cleaned


def add_asset(
    session: Session,
    store: BlobStore,
    principal: Principal,
    version_id: int,
    filename: str,
    fp: BinaryIO,
    *,
    max_pixels: int,
    max_bytes: int | None = None,
    tags: Sequence[str] = (),
) -> Asset:
    [asset] = add_assets(
        session, store, principal, version_id, [(filename, fp)],
        max_pixels=max_pixels, max_bytes=max_bytes,
    )  # fmt: skip
    if tags:
        _set_tags(session, asset, tags)
    return asset


def add_assets(
    session: Session,
    store: BlobStore,
    principal: Principal,
    version_id: int,
    files: Sequence[tuple[str, BinaryIO]],
    *,
    max_pixels: int,
    max_bytes: int | None = None,
) -> list[Asset]:
    """Adds images to a version the caller may write; all or nothing (the caller's transaction).

    Each file is checked as an image and stored as a blob; the rows are written together, in
    the order given. A name already in the version, or twice in `files`, is a 409 naming it."""
    version = get_writable_version(session, principal, version_id)
    names = [clean_filename(name) for name, _ in files]
    seen: set[str] = set()
    repeated = []
    for name in names:
        if name in seen:
            repeated.append(name)
        seen.add(name)
    taken = set(
        session.scalars(
            select(Asset.filename).where(Asset.version_id == version.id, Asset.filename.in_(names))
        )
    )
    for name in [*repeated, *(n for n in names if n in taken)][:1]:
        raise Conflict(
            f"{name}: an asset with this name already exists in the version",
            code="already_exists",
            details={"filename": name},
        )
    created = []
    for name, (_, fp) in zip(names, files, strict=True):
        info = probe_image(fp, name, max_pixels)
        blob = store.put(fp, max_bytes=max_bytes)
        asset = Asset(
            version_id=version.id, blob_sha256=blob.sha256, filename=name, mime=info.mime,
            width=info.width, height=info.height, meta={}, tag_rows=[],
        )  # fmt: skip
        created.append((asset, blob))
    register_blobs(session, [(blob.sha256, blob.size, a.mime) for a, blob in created])
    session.add_all(a for a, _ in created)
    session.flush()
    return [a for a, _ in created]


def get_asset(session: Session, principal: Principal, asset_id: int) -> Asset:
    stmt = select(Asset).where(Asset.id == asset_id)
    asset = session.scalar(in_organization(stmt, Asset.version_id, principal))
    if asset is None:
        raise NotFound.of("asset", asset_id)
    if principal.is_run:
        get_version(session, principal, asset.version_id)  # Forbidden outside the run's job
    return asset


def get_assets(
    session: Session, principal: Principal, version_id: int, asset_ids: Sequence[int]
) -> list[Asset]:
    """Many assets of one version in one query, in the order asked; ids that are not in the
    version are left out."""
    if len(asset_ids) > MAX_BATCH_IMAGES:
        raise InvalidInput(f"at most {MAX_BATCH_IMAGES} assets at once", details={"loc": ["ids"]})
    get_version(session, principal, version_id)
    found = {a.id: a for a in session.scalars(
        select(Asset).where(Asset.version_id == version_id, Asset.id.in_(list(asset_ids)))
    )}  # fmt: skip
    return [found[i] for i in asset_ids if i in found]


def list_assets(
    session: Session,
    principal: Principal,
    version_id: int,
    page: PageRequest,
    flt: AssetFilter | None = None,
) -> Page[Asset]:
    get_version(session, principal, version_id)
    stmt = select(Asset).where(Asset.version_id == version_id)
    flt = flt or AssetFilter()
    if flt.tag is not None:
        stmt = stmt.where(exists().where(AssetTag.asset_id == Asset.id, AssetTag.tag == flt.tag))
    if flt.label is not None:
        label_id = _resolve_label(session, version_id, flt.label)
        stmt = stmt.where(
            exists()
            .where(Annotation.asset_id == Asset.id)
            .where(Shape.annotation_id == Annotation.id, Shape.label_id == label_id)
        )
    if flt.annotated is not None:
        has_shapes = (
            exists()
            .where(Annotation.asset_id == Asset.id)
            .where(Shape.annotation_id == Annotation.id)
        )
        stmt = stmt.where(has_shapes if flt.annotated else ~has_shapes)
    for wanted, kind in (
        (flt.human_annotated, AuthorKind.user),
        (flt.run_annotated, AuthorKind.run),
    ):
        if wanted is not None:
            authored = (
                exists()
                .where(Annotation.asset_id == Asset.id, Annotation.author_kind == kind)
                .where(Shape.annotation_id == Annotation.id)
            )
            stmt = stmt.where(authored if wanted else ~authored)
    return paginate(session, stmt, Asset.id, page)


def _resolve_label(session: Session, version_id: int, label: str) -> int:
    stmt = select(Label.id).where(Label.version_id == version_id)
    if is_number(label):
        stmt = stmt.where(Label.id == int(label))
    else:
        stmt = stmt.where(func.lower(Label.name) == label.lower())
    label_id = session.scalar(stmt)
    if label_id is None:
        raise InvalidInput(
            f"the version has no label {label!r}", code="unknown_label", details={"label": label}
        )
    return label_id


def _set_tags(session: Session, asset: Asset, tags: Sequence[str]) -> None:
    wanted = check_tags(tags)
    if [t.tag for t in asset.tag_rows] == wanted:
        return
    session.execute(delete(AssetTag).where(AssetTag.asset_id == asset.id))
    session.add_all(AssetTag(asset_id=asset.id, tag=t) for t in wanted)
    session.flush()
    session.expire(asset, ["tag_rows"])


def update_asset(
    session: Session,
    principal: Principal,
    asset_id: int,
    *,
    tags: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Asset:
    """Replaces the asset's tags and/or metadata (the image itself is immutable)."""
    asset = get_asset(session, principal, asset_id)
    if tags is not None:
        _set_tags(session, asset, tags)
    if metadata is not None:
        asset.meta = metadata
    session.flush()
    return asset


def version_tags(session: Session, principal: Principal, version_id: int,
                 limit: int = 500) -> list[str]:  # fmt: skip
    """The distinct tags of a version's assets, sorted (the first `limit`): what a tag filter
    can choose from."""
    get_version(session, principal, version_id)
    stmt = (
        select(AssetTag.tag)
        .join(Asset, Asset.id == AssetTag.asset_id)
        .where(Asset.version_id == version_id)
        .distinct()
        .order_by(AssetTag.tag)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def delete_asset(session: Session, principal: Principal, asset_id: int) -> None:
    """Deletes the row and its annotations; the blob stays until garbage collection."""
    asset = get_asset(session, principal, asset_id)
    get_writable_version(session, principal, asset.version_id)
    session.delete(asset)
    session.flush()
