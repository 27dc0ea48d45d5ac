"""Datasets: named containers of versions, unique by name within an organization."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from darkroom.db.models import Dataset
from darkroom.domain.accounts import Principal
from darkroom.domain.pagination import Page, PageRequest, paginate
from darkroom.errors import Conflict, InvalidInput, NotFound
from darkroom.text import check_name

__all__ = ["create_dataset", "delete_dataset", "get_dataset", "list_datasets", "update_dataset"]


def _name_taken(session: Session, principal: Principal, name: str) -> bool:
    stmt = select(Dataset.id).where(
        Dataset.organization_id == principal.organization_id, Dataset.name == name
    )
    return session.scalar(stmt) is not None


def create_dataset(
    session: Session, principal: Principal, name: str, description: str = ""
) -> Dataset:
    name = check_name(name, "dataset")
    if _name_taken(session, principal, name):
        raise Conflict(f"a dataset named {name!r} already exists", code="already_exists")
    dataset = Dataset(organization_id=principal.organization_id, name=name, description=description)
    session.add(dataset)
    session.flush()
    return dataset


def get_dataset(session: Session, principal: Principal, dataset_id: int) -> Dataset:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None or dataset.organization_id != principal.organization_id:
        raise NotFound.of("dataset", dataset_id)
    return dataset


def list_datasets(session: Session, principal: Principal, page: PageRequest) -> Page[Dataset]:
    stmt = select(Dataset).where(Dataset.organization_id == principal.organization_id)
    return paginate(session, stmt, Dataset.id, page)


def update_dataset(
    session: Session,
    principal: Principal,
    dataset_id: int,
    *,
    name: str | None = None,
    description: str | None = None,
) -> Dataset:
    dataset = get_dataset(session, principal, dataset_id)
    if name is not None:
        name = check_name(name, "dataset")
        if name != dataset.name and _name_taken(session, principal, name):
            raise Conflict(f"a dataset named {name!r} already exists", code="already_exists")
        dataset.name = name
    if description is not None:
        dataset.description = description
    session.flush()
    return dataset


def delete_dataset(session: Session, principal: Principal, dataset_id: int) -> None:
    """Deletes the dataset with its versions, assets and annotations; blobs become garbage."""
    session.delete(get_dataset(session, principal, dataset_id))
    session.flush()


MAX_TAG_LENGTH = 100


def check_tags(tags: Sequence[str]) -> list[str]:
    """Asset tags stripped, deduplicated and sorted; each 1 to MAX_TAG_LENGTH characters."""
    cleaned = sorted({t.strip() for t in tags})
    for tag in cleaned:
        if not tag or len(tag) > MAX_TAG_LENGTH:
            raise InvalidInput(
                f"tags must be 1 to {MAX_TAG_LENGTH} characters", details={"field": "tags"}
            )
    return cleaned
