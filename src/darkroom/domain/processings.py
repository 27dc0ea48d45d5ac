"""The processing registry: processings and their immutable revisions.

A revision holds everything that decides what a run does: its source, parameter schema with
defaults, timeout and requested resources. Editing any of those makes a new revision; re-runs
take the newest. Built-ins (`darkroom.processings`) are registered public at server start, a
changed built-in getting a new revision.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from darkroom.db.models import Processing, ProcessingRevision, ProcessingType, TargetKind
from darkroom.domain.accounts import Principal
from darkroom.domain.datasets import check_name
from darkroom.domain.pagination import Page, PageRequest, paginate
from darkroom.domain.parameters import check_schema
from darkroom.errors import Conflict, Forbidden, InvalidInput, NotFound

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "RevisionSpec",
    "create_processing",
    "get_processing",
    "latest_revision",
    "list_processings",
    "list_revisions",
    "register_builtin",
    "update_processing",
]

DEFAULT_TIMEOUT_S = 2 * 3600
MAX_TIMEOUT_S = 7 * 24 * 3600
SOURCE_KINDS = ("builtin", "inline")


@dataclass(frozen=True, slots=True)
class RevisionSpec:
    """The runnable part of a processing; two specs with one digest are the same revision."""

    source: dict[str, Any]
    parameters_schema: dict[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    timeout_s: int = DEFAULT_TIMEOUT_S
    resources: dict[str, Any] = field(default_factory=dict)

    def digest(self) -> str:
        doc = [self.source, self.parameters_schema, self.timeout_s, self.resources]
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def checked(self, *, allow_builtin: bool = False) -> RevisionSpec:
        _check_source(self.source, allow_builtin=allow_builtin)
        check_schema(self.parameters_schema)
        if not 1 <= self.timeout_s <= MAX_TIMEOUT_S:
            raise InvalidInput(
                f"timeout_s must be between 1 and {MAX_TIMEOUT_S}", details={"loc": ["timeout_s"]}
            )
        return self


def _check_source(source: dict[str, Any], *, allow_builtin: bool) -> None:
    kind = source.get("kind")
    if kind == "builtin" and allow_builtin:
        return
    if kind != "inline":
        raise InvalidInput(
            f"source kind {kind!r} is not supported here (use 'inline': Python code with an "
            "entrypoint function taking a ProcessingContext)",
            code="invalid_source",
            details={"loc": ["source", "kind"]},
        )
    code = source.get("code")
    entrypoint = source.get("entrypoint", "run")
    if not isinstance(code, str) or not code.strip():
        raise InvalidInput(
            "source.code is empty", code="invalid_source", details={"loc": ["source", "code"]}
        )
    if not isinstance(entrypoint, str) or not entrypoint.isidentifier():
        raise InvalidInput(
            "source.entrypoint must be a function name", code="invalid_source",
            details={"loc": ["source", "entrypoint"]},
        )  # fmt: skip
    try:
        compile(code, "<processing>", "exec")
    except SyntaxError as exc:
        raise InvalidInput(
            f"source.code line {exc.lineno}: {exc.msg}", code="invalid_source",
            details={"loc": ["source", "code"], "line": exc.lineno},
        ) from exc  # fmt: skip


def _visible(principal: Principal) -> Any:
    return or_(Processing.organization_id == principal.organization_id, Processing.is_public)


def get_processing(session: Session, principal: Principal, ident: int | str) -> Processing:
    """By id, or by name (the caller's own processing first, then a public one)."""
    stmt = select(Processing).where(_visible(principal))
    if isinstance(ident, int) or str(ident).isdigit():
        found = session.scalar(stmt.where(Processing.id == int(ident)))
    else:
        found = session.scalars(
            stmt.where(Processing.name == ident).order_by(
                (Processing.organization_id == principal.organization_id).desc(), Processing.id
            )
        ).first()
    if found is None:
        raise NotFound.of("processing", ident)
    return found


def list_processings(session: Session, principal: Principal, page: PageRequest) -> Page[Processing]:
    return paginate(session, select(Processing).where(_visible(principal)), Processing.id, page)


def latest_revision(session: Session, processing_id: int) -> ProcessingRevision:
    revision = session.scalars(
        select(ProcessingRevision)
        .where(ProcessingRevision.processing_id == processing_id)
        .order_by(ProcessingRevision.number.desc())
        .limit(1)
    ).first()
    if revision is None:  # a processing is always created with its first revision
        raise NotFound.of("revision of processing", processing_id)
    return revision


def list_revisions(
    session: Session, principal: Principal, ident: int | str
) -> list[ProcessingRevision]:
    processing = get_processing(session, principal, ident)
    stmt = select(ProcessingRevision).where(ProcessingRevision.processing_id == processing.id)
    return list(session.scalars(stmt.order_by(ProcessingRevision.number)))


def _add_revision(
    session: Session, processing: Processing, spec: RevisionSpec
) -> ProcessingRevision:
    number = session.scalar(
        select(func.coalesce(func.max(ProcessingRevision.number), 0)).where(
            ProcessingRevision.processing_id == processing.id
        )
    )
    revision = ProcessingRevision(
        processing_id=processing.id,
        number=(number or 0) + 1,
        source=spec.source,
        parameters_schema=spec.parameters_schema,
        timeout_s=spec.timeout_s,
        resources=spec.resources,
        digest=spec.digest(),
    )
    session.add(revision)
    session.flush()
    return revision


def _check_kinds(type_: str, target: str) -> None:
    if type_ not in ProcessingType.__members__:
        raise InvalidInput(
            f"type must be one of {', '.join(ProcessingType)}", details={"loc": ["type"]}
        )
    if target not in TargetKind.__members__:
        raise InvalidInput(
            f"target must be one of {', '.join(TargetKind)}", details={"loc": ["target"]}
        )


def create_processing(
    session: Session,
    principal: Principal,
    *,
    name: str,
    type: str,
    spec: RevisionSpec,
    target: str = TargetKind.dataset_version,
    description: str = "",
    needs_model: bool = False,
) -> Processing:
    name = check_name(name, "processing")
    _check_kinds(type, target)
    spec.checked()
    taken = session.scalar(
        select(Processing.id).where(
            Processing.organization_id == principal.organization_id, Processing.name == name
        )
    )
    if taken is not None:
        raise Conflict(f"a processing named {name!r} already exists", code="already_exists")
    processing = Processing(
        organization_id=principal.organization_id, name=name, type=type, target=target,
        description=description, needs_model=needs_model, created_by=principal.user_id,
    )  # fmt: skip
    session.add(processing)
    session.flush()
    _add_revision(session, processing, spec)
    return processing


def update_processing(
    session: Session,
    principal: Principal,
    ident: int | str,
    *,
    description: str | None = None,
    needs_model: bool | None = None,
    source: dict[str, Any] | None = None,
    parameters_schema: dict[str, Any] | None = None,
    timeout_s: int | None = None,
    resources: dict[str, Any] | None = None,
) -> Processing:
    """Edits a processing of the caller's organization; runnable changes make a revision."""
    processing = get_processing(session, principal, ident)
    if processing.organization_id != principal.organization_id:
        raise Forbidden(f"processing {processing.name!r} is public and not yours to edit")
    if description is not None:
        processing.description = description
    if needs_model is not None:
        processing.needs_model = needs_model
    current = latest_revision(session, processing.id)
    spec = RevisionSpec(
        source=source if source is not None else current.source,
        parameters_schema=parameters_schema
        if parameters_schema is not None
        else current.parameters_schema,
        timeout_s=timeout_s if timeout_s is not None else current.timeout_s,
        resources=resources if resources is not None else current.resources,
    )
    if spec.digest() != current.digest:
        _add_revision(session, processing, spec.checked())
    session.flush()
    return processing


def register_builtin(
    session: Session,
    *,
    name: str,
    type: str,
    description: str,
    needs_model: bool,
    spec: RevisionSpec,
) -> ProcessingRevision:
    """Creates or updates a public built-in; idempotent, a new revision only when it changed."""
    _check_kinds(type, TargetKind.dataset_version)
    spec.checked(allow_builtin=True)
    processing = session.scalar(
        select(Processing).where(Processing.organization_id.is_(None), Processing.name == name)
    )
    if processing is None:
        processing = Processing(
            organization_id=None, name=name, type=type, description=description,
            is_public=True, needs_model=needs_model,
        )  # fmt: skip
        session.add(processing)
        session.flush()
        return _add_revision(session, processing, spec)
    processing.type, processing.description, processing.needs_model = type, description, needs_model
    current = latest_revision(session, processing.id)
    if current.digest == spec.digest():
        return current
    return _add_revision(session, processing, spec)
