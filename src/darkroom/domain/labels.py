"""Labels of a version: ordered, coloured, unique by name (case-insensitively) in the version.

Shapes reference labels by id, so a rename keeps every shape. Deleting a label that shapes use
is refused unless forced, and then its shapes go with it.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from darkroom.db.models import Label, Shape
from darkroom.domain.accounts import Principal
from darkroom.domain.versions import get_version, in_organization
from darkroom.errors import Conflict, InvalidInput, NotFound
from darkroom.text import check_name

__all__ = [
    "PALETTE",
    "create_label",
    "delete_label",
    "ensure_labels",
    "get_label",
    "label_names",
    "list_labels",
    "next_color",
    "update_label",
]

PALETTE = (
    "#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6",
    "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#fffac8", "#800000", "#aaffc3",
    "#808000", "#ffd8b1", "#000075", "#808080",
)  # fmt: skip
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


def _check_color(color: str) -> str:
    if not COLOR_RE.match(color):
        raise InvalidInput(
            f"color {color!r} is not of the form #rrggbb", details={"field": "color"}
        )
    return color.lower()


def list_labels(session: Session, principal: Principal, version_id: int) -> list[Label]:
    get_version(session, principal, version_id)
    stmt = select(Label).where(Label.version_id == version_id).order_by(Label.position, Label.id)
    return list(session.scalars(stmt))


def get_label(session: Session, principal: Principal, label_id: int) -> Label:
    stmt = select(Label).where(Label.id == label_id)
    label = session.scalar(in_organization(stmt, Label.version_id, principal))
    if label is None:
        raise NotFound.of("label", label_id)
    return label


def next_color(count: int) -> str:
    """The colour of a version's label number `count` (from 0): the palette in turn, so that
    labels added one after another are told apart."""
    return PALETTE[count % len(PALETTE)]


def _clash(session: Session, version_id: int, name: str, exclude_id: int | None = None) -> bool:
    stmt = select(Label.id).where(
        Label.version_id == version_id, func.lower(Label.name) == name.lower()
    )
    if exclude_id is not None:
        stmt = stmt.where(Label.id != exclude_id)
    return session.scalar(stmt) is not None


def create_label(
    session: Session, principal: Principal, version_id: int, name: str, color: str | None = None
) -> Label:
    get_version(session, principal, version_id)
    name = check_name(name, "label")
    if _clash(session, version_id, name):
        raise Conflict(f"label {name!r} already exists in this version", code="already_exists")
    count = session.scalar(select(func.count(Label.id)).where(Label.version_id == version_id)) or 0
    label = Label(
        version_id=version_id,
        name=name,
        color=_check_color(color) if color else next_color(count),
        position=count,
    )
    session.add(label)
    session.flush()
    return label


def ensure_labels(session: Session, version_id: int, names: list[str]) -> dict[str, Label]:
    """Labels by name, created in order for the names the version lacks (imports use this).

    The caller has already checked access to the version. Matching is case-insensitive.
    """
    existing = {
        x.name.lower(): x
        for x in session.scalars(select(Label).where(Label.version_id == version_id))
    }
    position = len(existing)
    result: dict[str, Label] = {}
    for raw in names:
        name = check_name(raw, "label")
        label = existing.get(name.lower())
        if label is None:
            label = Label(
                version_id=version_id,
                name=name,
                color=next_color(position),
                position=position,
            )
            session.add(label)
            existing[name.lower()] = label
            position += 1
        result[raw] = label
    session.flush()
    return result


def update_label(
    session: Session,
    principal: Principal,
    label_id: int,
    *,
    name: str | None = None,
    color: str | None = None,
    position: int | None = None,
) -> Label:
    label = get_label(session, principal, label_id)
    if name is not None:
        name = check_name(name, "label")
        if _clash(session, label.version_id, name, exclude_id=label.id):
            raise Conflict(f"label {name!r} already exists in this version", code="already_exists")
        label.name = name
    if color is not None:
        label.color = _check_color(color)
    if position is not None:
        label.position = position
    session.flush()
    return label


def delete_label(
    session: Session, principal: Principal, label_id: int, *, force: bool = False
) -> int:
    """Deletes the label; returns how many shapes went with it (only possible with `force`)."""
    label = get_label(session, principal, label_id)
    used = session.scalar(select(func.count(Shape.id)).where(Shape.label_id == label.id)) or 0
    if used and not force:
        raise Conflict(
            f"label {label.name!r} is used by {used} shapes; delete with force to remove them too",
            code="label_in_use",
            details={"shapes": used},
        )
    session.delete(label)
    session.flush()
    return used


def label_names(session: Session, version_id: int) -> dict[int, str]:
    """Label id → name for a version whose access the caller has checked."""
    return dict(
        session.execute(select(Label.id, Label.name).where(Label.version_id == version_id)).all()
    )
