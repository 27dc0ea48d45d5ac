from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from darkroom.domain import annotations, assets, labels
from darkroom.domain.thumbnails import ALLOWED_SIZES, thumbnail
from darkroom.errors import InvalidInput
from darkroom.http.deps import PrincipalDep, RunOrUserDep, SessionDep, StoreDep
from darkroom.http.responses import IMMUTABLE, blob_response
from darkroom.http.schemas import (
    AnnotationPublic,
    AnnotationsPublic,
    AnnotationWrite,
    AssetPublic,
    AssetUpdate,
    DbInt,
)

router = APIRouter(prefix="/assets", tags=["assets"])


@router.get("/{asset_id}", response_model=AssetPublic)
def get_asset(asset_id: DbInt, session: SessionDep, principal: RunOrUserDep) -> AssetPublic:
    return AssetPublic.of(assets.get_asset(session, principal, asset_id))


@router.patch("/{asset_id}", response_model=AssetPublic)
def update_asset(
    asset_id: DbInt, body: AssetUpdate, session: SessionDep, principal: PrincipalDep
) -> AssetPublic:
    asset = assets.update_asset(
        session, principal, asset_id, tags=body.tags, metadata=body.metadata
    )
    return AssetPublic.of(asset)


@router.delete("/{asset_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_asset(asset_id: DbInt, session: SessionDep, principal: PrincipalDep) -> Response:
    assets.delete_asset(session, principal, asset_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{asset_id}/image", response_class=Response)
def get_asset_image(
    asset_id: DbInt, request: Request, session: SessionDep, principal: RunOrUserDep, store: StoreDep
) -> Response:
    asset = assets.get_asset(session, principal, asset_id)
    return blob_response(request, store, asset.blob_sha256, asset.mime)


@router.get("/{asset_id}/thumbnail", response_class=Response)
def get_asset_thumbnail(
    asset_id: DbInt,
    session: SessionDep,
    principal: RunOrUserDep,
    store: StoreDep,
    size: Annotated[int, Query(description=f"one of {ALLOWED_SIZES}")] = 256,
) -> Response:
    if size not in ALLOWED_SIZES:
        raise InvalidInput(f"size must be one of {ALLOWED_SIZES}", details={"field": "size"})
    asset = assets.get_asset(session, principal, asset_id)
    return Response(
        thumbnail(store, asset.blob_sha256, size),
        media_type="image/jpeg",
        headers={"Cache-Control": IMMUTABLE, "ETag": f'"{asset.blob_sha256}-{size}"'},
    )


def _annotations_page(
    session: SessionDep, principal: RunOrUserDep, asset_id: DbInt
) -> AnnotationsPublic:
    asset = assets.get_asset(session, principal, asset_id)
    names = labels.label_names(session, asset.version_id)
    items = annotations.list_annotations(session, principal, asset_id)
    return AnnotationsPublic(items=[AnnotationPublic.of(a, names) for a in items])


@router.get("/{asset_id}/annotations", response_model=AnnotationsPublic)
def list_annotations(
    asset_id: DbInt, session: SessionDep, principal: RunOrUserDep
) -> AnnotationsPublic:
    """Every author's annotation of the asset, each with its shapes."""
    return _annotations_page(session, principal, asset_id)


def _write(
    asset_id: DbInt,
    body: AnnotationWrite,
    session: SessionDep,
    principal: RunOrUserDep,
    replace: bool,
) -> AnnotationPublic:
    ann = annotations.add_shapes(session, principal, asset_id, body.shapes, replace=replace)
    asset = assets.get_asset(session, principal, asset_id)
    return AnnotationPublic.of(ann, labels.label_names(session, asset.version_id))


@router.post("/{asset_id}/annotations", response_model=AnnotationPublic, status_code=201)
def add_annotations(
    asset_id: DbInt, body: AnnotationWrite, session: SessionDep, principal: RunOrUserDep
) -> AnnotationPublic:
    """Appends shapes to the caller's annotation of the asset."""
    return _write(asset_id, body, session, principal, replace=False)


@router.put("/{asset_id}/annotations", response_model=AnnotationPublic)
def replace_annotations(
    asset_id: DbInt, body: AnnotationWrite, session: SessionDep, principal: RunOrUserDep
) -> AnnotationPublic:
    """Replaces the caller's shapes on the asset; other authors' shapes are untouched."""
    return _write(asset_id, body, session, principal, replace=True)
