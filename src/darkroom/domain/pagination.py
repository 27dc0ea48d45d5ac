"""Keyset pagination: `?after=<id>&limit=`, answered as `{"items", "next"}`. Never OFFSET."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

__all__ = ["Page", "PageRequest", "paginate"]

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class PageRequest:
    after: int | None = None
    limit: int = DEFAULT_LIMIT
    newest_first: bool = False  # pages list history newest first; `after` then means "older than"

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next: int | None


def paginate(
    session: Session, stmt: Select[Any], id_column: InstrumentedAttribute[int], page: PageRequest
) -> Page[Any]:
    """Items of `stmt` after `page.after` in id order; `next` is set when more remain."""
    if page.after is not None:
        stmt = stmt.where(id_column < page.after if page.newest_first else id_column > page.after)
    order = id_column.desc() if page.newest_first else id_column
    rows = list(session.scalars(stmt.order_by(order).limit(page.limit + 1)))
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return Page(rows, getattr(rows[-1], id_column.key) if more and rows else None)
