"""The processing registry: processings and their immutable revisions.

A revision holds everything that decides what a run does: its source, parameter schema with
defaults, timeout and requested resources. Editing any of those makes a new revision; re-runs
take the newest. Built-ins (`darkroom.processings`) are registered public at server start, a
changed built-in getting a new revision.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from darkroom.bundles.archive import Bundle
from darkroom.db.models import Processing, ProcessingRevision, TargetKind
from darkroom.defaults import RUN_TIMEOUT_S
from darkroom.domain.accounts import Principal
from darkroom.domain.blobs import register_blobs
from darkroom.domain.pagination import Page, PageRequest, paginate
from darkroom.domain.parameters import check_schema
from darkroom.domain.resources import parse_resources
from darkroom.errors import Conflict, Forbidden, InvalidInput, NotFound
from darkroom.sources import (
    BuiltinSource,
    BundleSource,
    ImageSource,
    InlineSource,
    Source,
    parse_source,
    source_doc,
)
from darkroom.storage import BlobStore
from darkroom.text import check_name, is_number
from darkroom.values import check_kinds

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "Pushed",
    "RevisionSpec",
    "SourceFile",
    "code_of",
    "create_processing",
    "get_processing",
    "get_revision",
    "latest_revision",
    "latest_revisions",
    "list_processings",
    "list_revisions",
    "push_bundle",
    "register_builtin",
    "update_processing",
]

DEFAULT_TIMEOUT_S = RUN_TIMEOUT_S
MAX_TIMEOUT_S = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class RevisionSpec:
    """The runnable part of a processing; two specs with one digest are the same revision."""

    source: Source
    parameters_schema: dict[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    timeout_s: int = DEFAULT_TIMEOUT_S
    resources: dict[str, Any] = field(default_factory=dict)

    def digest(self) -> str:
        doc = [source_doc(self.source), self.parameters_schema, self.timeout_s, self.resources]
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def checked(self, *, allow_builtin: bool = False, allow_bundle: bool = False) -> RevisionSpec:
        """Bundle sources only come from `push_bundle` (or unchanged from the revision before):
        a caller naming a blob by hash must not get to run bytes it did not push."""
        _check_source(self.source, allow_builtin=allow_builtin, allow_bundle=allow_bundle)
        check_schema(self.parameters_schema)
        parse_resources(self.resources)
        if not 1 <= self.timeout_s <= MAX_TIMEOUT_S:
            raise InvalidInput(
                f"timeout_s must be between 1 and {MAX_TIMEOUT_S}", details={"loc": ["timeout_s"]}
            )
        return self


def _check_source(source: Source, *, allow_builtin: bool, allow_bundle: bool) -> None:
    """Its fields (a source built in code, as the pages build one, is checked as a posted one
    is), which kinds a caller may set, and that inline code compiles."""
    parse_source(source_doc(source))
    if isinstance(source, BuiltinSource) and not allow_builtin:
        raise InvalidInput("builtin sources are darkroom's own processings", code="invalid_source",
                           details={"loc": ["source", "kind"]})  # fmt: skip
    if isinstance(source, BundleSource) and not allow_bundle:
        raise InvalidInput(
            "bundle sources are made by pushing a bundle (darkroom processing push)",
            code="invalid_source", details={"loc": ["source", "kind"]},
        )  # fmt: skip
    if not isinstance(source, InlineSource):
        return
    try:
        compile(source.code, "<processing>", "exec")
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
    if isinstance(ident, int) or is_number(str(ident)):
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


def latest_revision(
    session: Session, processing_id: int, *, dev: bool = False
) -> ProcessingRevision:
    """The newest regular revision (what launches and re-runs take); with `dev`, the newest of
    any kind. A processing that has only development revisions gives its newest one."""
    stmt = select(ProcessingRevision).where(ProcessingRevision.processing_id == processing_id)
    order = (ProcessingRevision.number.desc(),)
    if not dev:
        order = (ProcessingRevision.is_dev.asc(), *order)
    revision = session.scalars(stmt.order_by(*order).limit(1)).first()
    if revision is None:  # a processing is always created with its first revision
        raise NotFound.of("revision of processing", processing_id)
    return revision


def get_revision(session: Session, processing_id: int, number: int) -> ProcessingRevision:
    revision = session.scalar(
        select(ProcessingRevision).where(
            ProcessingRevision.processing_id == processing_id, ProcessingRevision.number == number
        )
    )
    if revision is None:
        raise NotFound.of("revision", number)
    return revision


def latest_revisions(session: Session, processing_ids: list[int]) -> dict[int, ProcessingRevision]:
    """The newest regular revision of many processings in one query (lists show it)."""
    if not processing_ids:
        return {}
    newest = (
        select(ProcessingRevision.processing_id, func.max(ProcessingRevision.number).label("n"))
        .where(ProcessingRevision.processing_id.in_(processing_ids), ~ProcessingRevision.is_dev)
        .group_by(ProcessingRevision.processing_id)
        .subquery()
    )
    stmt = select(ProcessingRevision).join(
        newest,
        (newest.c.processing_id == ProcessingRevision.processing_id)
        & (newest.c.n == ProcessingRevision.number),
    )
    return {r.processing_id: r for r in session.scalars(stmt)}


def list_revisions(
    session: Session, principal: Principal, ident: int | str
) -> list[ProcessingRevision]:
    processing = get_processing(session, principal, ident)
    stmt = select(ProcessingRevision).where(ProcessingRevision.processing_id == processing.id)
    return list(session.scalars(stmt.order_by(ProcessingRevision.number)))


def _lock(session: Session, processing: Processing) -> None:
    """Serializes edits of one processing (PostgreSQL row lock; SQLite has one writer anyway),
    so two concurrent edits or pushes cannot both take the same revision number."""
    if processing.id is not None:
        session.execute(
            select(Processing.id).where(Processing.id == processing.id).with_for_update()
        )


def _add_revision(
    session: Session,
    processing: Processing,
    spec: RevisionSpec,
    *,
    is_dev: bool = False,
    bundle_sha256: str | None = None,
) -> ProcessingRevision:
    _lock(session, processing)
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
        is_dev=is_dev,
        bundle_sha256=bundle_sha256,
    )
    session.add(revision)
    session.flush()
    return revision


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file of code a revision runs, as its page shows it (`anchor` prefixes line anchors)."""

    name: str
    anchor: str
    lines: list[str]


def code_of(source: Source) -> list[SourceFile]:
    """The code a revision runs, for reading: an inline processing's file, or a built-in's
    module followed by the package's shared modules it imports. Bundles keep theirs in their
    archive: nothing here."""
    if isinstance(source, InlineSource):
        return [SourceFile("processing.py", "L", source.code.splitlines())]
    if not isinstance(source, BuiltinSource):
        return []
    import importlib.util

    module = source.module
    package = module.rpartition(".")[0]
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None or package != "darkroom.processings":
        return []
    text = Path(spec.origin).read_text()
    files = [SourceFile(Path(spec.origin).name, "L", text.splitlines())]
    for shared in sorted(set(re.findall(r"from darkroom\.processings\.(\w+) import", text))):
        found = importlib.util.find_spec(f"{package}.{shared}")
        if found is not None and found.origin is not None:
            lines = Path(found.origin).read_text().splitlines()
            files.append(SourceFile(Path(found.origin).name, f"{shared}-L", lines))
    return files


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
    check_kinds(type, target)
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
    source: Source | None = None,
    parameters_schema: dict[str, Any] | None = None,
    timeout_s: int | None = None,
    resources: dict[str, Any] | None = None,
) -> Processing:
    """Edits a processing of the caller's organization; runnable changes make a revision."""
    processing = get_processing(session, principal, ident)
    if processing.organization_id != principal.organization_id:
        raise Forbidden(f"processing {processing.name!r} is public and not yours to edit")
    _lock(session, processing)
    session.refresh(processing)
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
        unchanged_bundle = source is None and isinstance(current.source, BundleSource)
        sha = current.bundle_sha256 if unchanged_bundle else None
        checked = spec.checked(allow_bundle=unchanged_bundle)
        _add_revision(session, processing, checked, bundle_sha256=sha)
    session.flush()
    return processing


@dataclass(frozen=True, slots=True)
class Pushed:
    processing: Processing
    revision: ProcessingRevision
    created: bool  # False: the same bundle was pushed before, its revision is reused


def push_bundle(
    session: Session, principal: Principal, store: BlobStore, bundle: Bundle, *, dev: bool = False
) -> Pushed:
    """Stores a checked bundle and makes it the processing's newest revision (creating the
    processing on first push). The same files pushed again make no new revision."""
    manifest = bundle.manifest
    source: Source
    if manifest.image is not None:
        source = ImageSource(manifest.image, tuple(manifest.command))
    else:
        source = BundleSource(bundle.sha256, manifest.entrypoint, tuple(manifest.requirements),
                              files=len(bundle.files), size=len(bundle.archive))  # fmt: skip
    spec = RevisionSpec(source, manifest.parameters, manifest.timeout_s, manifest.resources)
    spec.checked(allow_bundle=True)
    processing = session.scalar(
        select(Processing).where(
            Processing.organization_id == principal.organization_id,
            Processing.name == manifest.name,
        )
    )
    if processing is None:
        processing = Processing(
            organization_id=principal.organization_id, name=manifest.name, type=manifest.type,
            target=manifest.target, created_by=principal.user_id,
        )  # fmt: skip
        session.add(processing)
        previous = None
    else:
        _lock(session, processing)
        previous = session.scalars(
            select(ProcessingRevision)
            .where(ProcessingRevision.processing_id == processing.id,
                   ProcessingRevision.is_dev == dev)
            .order_by(ProcessingRevision.number.desc()).limit(1)
        ).first()  # fmt: skip
    processing.type, processing.target = manifest.type, manifest.target
    processing.description, processing.needs_model = manifest.description, manifest.needs_model
    session.flush()
    if previous is not None and previous.digest == spec.digest():
        return Pushed(processing, previous, created=False)
    sha = None
    if isinstance(source, BundleSource):
        sha = store.put_bytes(bundle.archive).sha256
        register_blobs(session, [(sha, len(bundle.archive), "application/gzip")])
    revision = _add_revision(session, processing, spec, is_dev=dev, bundle_sha256=sha)
    return Pushed(processing, revision, created=True)


def register_builtin(
    session: Session,
    *,
    name: str,
    type: str,
    description: str,
    needs_model: bool,
    spec: RevisionSpec,
    model_families: list[str] | None = None,
    target: str = TargetKind.dataset_version,
) -> ProcessingRevision:
    """Creates or updates a public built-in; idempotent, a new revision only when it changed.

    The spec is not validated here: built-ins ship with darkroom and a test checks each one
    (tests/unit/test_builtin_discovery.py), while checking their schemas took a third of a
    second of every server start."""
    check_kinds(type, target)
    processing = session.scalar(
        select(Processing).where(Processing.organization_id.is_(None), Processing.name == name)
    )
    if processing is None:
        processing = Processing(
            organization_id=None, name=name, type=type, description=description,
            is_public=True, needs_model=needs_model, model_families=model_families,
            target=target,
        )  # fmt: skip
        session.add(processing)
        session.flush()
        return _add_revision(session, processing, spec)
    processing.type, processing.description, processing.needs_model = type, description, needs_model
    processing.model_families, processing.target = model_families, target
    current = latest_revision(session, processing.id)
    if current.digest == spec.digest():
        return current
    return _add_revision(session, processing, spec)
