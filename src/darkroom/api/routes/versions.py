from __future__ import annotations

import tarfile
from collections.abc import Iterator
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, Body, File, Query, Response, UploadFile, status
from fastapi.responses import FileResponse, StreamingResponse
from sqlalchemy.orm import Session

from darkroom.config import Settings
from darkroom.domain import annotations, assets, idempotency, labels, transfer, versions
from darkroom.domain.accounts import Principal
from darkroom.domain.transfer import Format, OnExisting
from darkroom.errors import InvalidInput
from darkroom.formats import archive
from darkroom.http.deps import (
    IdempotencyKey,
    PageDep,
    PrincipalDep,
    RunOrUserDep,
    SessionDep,
    SettingsDep,
    StoreDep,
)
from darkroom.http.responses import export_archive
from darkroom.http.schemas import (
    MAX_DB_INT,
    AnnotationPublic,
    AnnotationsPublic,
    AssetPublic,
    AssetsCreated,
    DbInt,
    ImportReportPublic,
    LabelCreate,
    LabelPublic,
    Page,
    VersionPublic,
    VersionStatsPublic,
    VersionUpdate,
)
from darkroom.runtime.contract import MAX_ANNOTATION_ITEMS, MAX_UPLOAD_FILES
from darkroom.storage import BlobStore

router = APIRouter(prefix="/versions", tags=["versions"])


@router.get("/{version_id}", response_model=VersionPublic)
def get_version(version_id: DbInt, session: SessionDep, principal: RunOrUserDep) -> object:
    return versions.get_version(session, principal, version_id)


@router.patch("/{version_id}", response_model=VersionPublic)
def update_version(
    version_id: DbInt, body: VersionUpdate, session: SessionDep, principal: PrincipalDep
) -> object:
    return versions.update_version(
        session, principal, version_id, name=body.name, description=body.description
    )


@router.delete("/{version_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_version(version_id: DbInt, session: SessionDep, principal: PrincipalDep) -> Response:
    versions.delete_version(session, principal, version_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


TAR_PIECE_BYTES = 1024 * 1024


def _id_list(ids: str, name: str) -> list[int]:
    try:
        wanted = [int(x) for x in ids.split(",") if x.strip()]
        if any(not 0 <= x <= MAX_DB_INT for x in wanted):
            raise ValueError
    except ValueError:
        raise InvalidInput(
            f"{name} must be comma-separated integers", details={"loc": [name]}
        ) from None
    return wanted


@router.get("/{version_id}/annotations", response_model=AnnotationsPublic)
def get_annotations(
    version_id: DbInt,
    session: SessionDep,
    principal: RunOrUserDep,
    asset_ids: Annotated[
        str, Query(description=f"comma-separated asset ids, at most {MAX_ANNOTATION_ITEMS}")
    ],
) -> AnnotationsPublic:
    """Every author's annotations of many assets of the version, by asset then author (ids not
    in the version are absent): one request per batch of images instead of one per image."""
    wanted = _id_list(asset_ids, "asset_ids")
    found = annotations.annotations_of_assets(session, principal, version_id, wanted)
    names = labels.label_names(session, version_id)
    return AnnotationsPublic(items=[AnnotationPublic.of(a, names) for a in found])


@router.get("/{version_id}/images", response_class=Response)
def get_images(
    version_id: DbInt,
    session: SessionDep,
    principal: RunOrUserDep,
    store: StoreDep,
    ids: Annotated[str, Query(description="comma-separated asset ids, at most 64")],
) -> Response:
    """Many assets' original bytes in one uncompressed tar, members named by asset id (in the
    order asked; ids not in the version are absent). Processings read their inputs this way:
    one request per batch instead of one per image."""
    wanted = _id_list(ids, "ids")
    found = [
        (a.id, a.blob_sha256) for a in assets.get_assets(session, principal, version_id, wanted)
    ]

    def tar_stream() -> Iterator[bytes]:
        """Header, bytes, padding to 512 per image, then the end blocks; sent in pieces of
        about TAR_PIECE_BYTES (each piece sent costs a thread hop and a write)."""
        piece = bytearray()
        for asset_id, sha in found:
            data = store.read(sha)
            info = tarfile.TarInfo(str(asset_id))
            info.size = len(data)
            piece += info.tobuf(tarfile.USTAR_FORMAT)
            piece += data
            piece += b"\0" * (-len(data) % tarfile.BLOCKSIZE)
            if len(piece) >= TAR_PIECE_BYTES:
                yield bytes(piece)
                piece.clear()
        piece += b"\0" * (2 * tarfile.BLOCKSIZE)
        yield bytes(piece)

    return StreamingResponse(tar_stream(), media_type="application/x-tar")


@router.get("/{version_id}/stats", response_model=VersionStatsPublic)
def get_version_stats(version_id: DbInt, session: SessionDep, principal: RunOrUserDep) -> object:
    return versions.version_stats(session, principal, version_id)


@router.get("/{version_id}/labels", response_model=Page[LabelPublic])
def list_labels(version_id: DbInt, session: SessionDep, principal: RunOrUserDep) -> object:
    """All labels of the version in their order (a version has few; never paginated)."""
    return Page[LabelPublic](
        items=labels.list_labels(session, principal, version_id),  # type: ignore[arg-type]
        next=None,
    )


@router.post(
    "/{version_id}/labels", response_model=LabelPublic, status_code=status.HTTP_201_CREATED
)
def create_label(
    version_id: DbInt, body: LabelCreate, session: SessionDep, principal: PrincipalDep
) -> object:
    return labels.create_label(session, principal, version_id, body.name, body.color)


@router.get("/{version_id}/assets", response_model=Page[AssetPublic])
def list_assets(
    version_id: DbInt,
    session: SessionDep,
    principal: RunOrUserDep,
    page: PageDep,
    label: Annotated[str | None, Query(description="label id or name")] = None,
    tag: str | None = None,
    annotated: bool | None = None,
    human_annotated: Annotated[
        bool | None, Query(description="with (or without) shapes drawn by a person")
    ] = None,
    run_annotated: Annotated[
        bool | None, Query(description="with (or without) shapes written by runs")
    ] = None,
) -> Page[AssetPublic]:
    flt = assets.AssetFilter(label, tag, annotated, human_annotated, run_annotated)
    result = assets.list_assets(session, principal, version_id, page, flt)
    return Page[AssetPublic](items=[AssetPublic.of(a) for a in result.items], next=result.next)


@router.post(
    "/{version_id}/assets", response_model=AssetsCreated, status_code=status.HTTP_201_CREATED
)
def upload_assets(
    version_id: DbInt,
    files: Annotated[list[UploadFile], File(description="one or many images")],
    session: SessionDep,
    principal: RunOrUserDep,
    store: StoreDep,
    settings: SettingsDep,
    key: IdempotencyKey = None,
) -> object:
    """Adds images; all or nothing: one rejected file rejects the request, naming the file."""

    named = [(upload.filename or "upload", upload.file) for upload in files]
    return _add_assets(session, principal, store, settings, version_id, named, key)


@router.post(
    "/{version_id}/assets/tar", response_model=AssetsCreated, status_code=status.HTTP_201_CREATED
)
def upload_assets_tar(
    version_id: DbInt,
    body: Annotated[
        bytes,
        Body(
            media_type="application/octet-stream",
            description="an uncompressed tar of images (sent as application/x-tar or "
            "application/octet-stream): each regular file is one image, named by its path in "
            "the archive",
        ),
    ],
    session: SessionDep,
    principal: RunOrUserDep,
    store: StoreDep,
    settings: SettingsDep,
    key: IdempotencyKey = None,
) -> object:
    """Adds the images of a tar body, as `POST /versions/{id}/assets` does for a form: all or
    nothing, same checks. Made for many small images sent by a program (a run's output
    images): a tar costs the server a fraction of a multipart form per file."""
    named = archive.tar_files(body, max_files=MAX_UPLOAD_FILES)
    return _add_assets(session, principal, store, settings, version_id, named, key)


def _add_assets(
    session: Session,
    principal: Principal,
    store: BlobStore,
    settings: Settings,
    version_id: int,
    files: list[tuple[str, BinaryIO]],
    key: str | None,
) -> dict[str, Any]:
    def write() -> dict[str, Any]:
        created = assets.add_assets(
            session,
            store,
            principal,
            version_id,
            files,
            max_pixels=settings.max_image_pixels,
            max_bytes=settings.max_upload_bytes,
        )
        return AssetsCreated(items=[AssetPublic.of(a) for a in created]).model_dump(mode="json")

    return idempotency.once(session, principal, key, write)


@router.post("/{version_id}/import", response_model=ImportReportPublic)
def import_annotations(
    version_id: DbInt,
    format: Format,
    file: Annotated[UploadFile, File(description="a zip, or a COCO JSON file")],
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    settings: SettingsDep,
    on_existing: Annotated[
        OnExisting,
        Query(
            description="images the version already has: replace your shapes on them "
            "(a re-import changes nothing), add beside them, or skip annotated ones"
        ),
    ] = OnExisting.replace,
) -> object:
    return transfer.import_into_version(
        session, store, principal, version_id, format, file.file, settings.import_limits,
        on_existing,
    )  # fmt: skip


@router.get(
    "/{version_id}/export",
    response_class=FileResponse,
    responses={200: {"content": {"application/zip": {}}}},
)
def export_version(
    version_id: DbInt, format: Format, session: SessionDep, principal: PrincipalDep, store: StoreDep
) -> FileResponse:
    return export_archive(session, store, principal, version_id, format)
