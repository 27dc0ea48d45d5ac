from __future__ import annotations

from fastapi import APIRouter, Response, status

from darkroom.domain import datasets, versions
from darkroom.http.deps import PageDep, PrincipalDep, SessionDep
from darkroom.http.schemas import (
    DatasetCreate,
    DatasetPublic,
    DatasetUpdate,
    DbInt,
    Page,
    VersionCreate,
    VersionPublic,
)

router = APIRouter(prefix="/datasets", tags=["datasets"])


@router.get("", response_model=Page[DatasetPublic])
def list_datasets(session: SessionDep, principal: PrincipalDep, page: PageDep) -> object:
    return datasets.list_datasets(session, principal, page)


@router.post("", response_model=DatasetPublic, status_code=status.HTTP_201_CREATED)
def create_dataset(body: DatasetCreate, session: SessionDep, principal: PrincipalDep) -> object:
    return datasets.create_dataset(session, principal, body.name, body.description)


@router.get("/{dataset_id}", response_model=DatasetPublic)
def get_dataset(dataset_id: DbInt, session: SessionDep, principal: PrincipalDep) -> object:
    return datasets.get_dataset(session, principal, dataset_id)


@router.patch("/{dataset_id}", response_model=DatasetPublic)
def update_dataset(
    dataset_id: DbInt, body: DatasetUpdate, session: SessionDep, principal: PrincipalDep
) -> object:
    return datasets.update_dataset(
        session, principal, dataset_id, name=body.name, description=body.description
    )


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_dataset(dataset_id: DbInt, session: SessionDep, principal: PrincipalDep) -> Response:
    datasets.delete_dataset(session, principal, dataset_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{dataset_id}/versions", response_model=Page[VersionPublic])
def list_versions(
    dataset_id: DbInt, session: SessionDep, principal: PrincipalDep, page: PageDep
) -> object:
    return versions.list_versions(session, principal, dataset_id, page)


@router.post(
    "/{dataset_id}/versions", response_model=VersionPublic, status_code=status.HTTP_201_CREATED
)
def create_version(
    dataset_id: DbInt, body: VersionCreate, session: SessionDep, principal: PrincipalDep
) -> object:
    """An empty version, or a copy of `parent_version_id` (rows copied, image bytes shared)."""
    return versions.create_version(
        session,
        principal,
        dataset_id,
        body.name,
        description=body.description,
        parent_version_id=body.parent_version_id,
    )
