"""Triggers: pipelines and processings that start themselves, each event exactly once.

Three kinds. `assets`: new assets in a version, debounced: it fires when `min_assets` arrived
since it last fired, or `debounce_s` after the first of them, on that version. `version`: a
version created by a person in a dataset (not one a processing made: a pipeline writing
versions into the dataset it watches would start itself forever), on that new version. `schedule`:
a cron expression (UTC, parsed by `cronsim`), on a version; a schedule missed while no scheduler
ran fires once, not once per missed tick.

Every scheduler (`darkroom serve`, `darkroom worker`) looks at the triggers a few times a
second (`fire_due`). A trigger fires by moving its `cursor` (the newest asset or version id it
consumed) or its `next_fire_at` with an update conditional on the old value, in the same
transaction that launches the job or pipeline run: of two schedulers only one update matches,
and a scheduler killed before its commit leaves the event for the next one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from darkroom.db.engine import SessionFactory, session_scope
from darkroom.db.models import (
    Asset,
    DatasetVersion,
    Trigger,
    TriggerKind,
    utcnow,
)
from darkroom.domain import jobs as jobs_domain
from darkroom.domain import pipelines as pipelines_domain
from darkroom.domain.accounts import Principal
from darkroom.domain.datasets import get_dataset
from darkroom.domain.model_registry import get_model_version
from darkroom.domain.pagination import Page, PageRequest, paginate
from darkroom.domain.parameters import resolve_parameters
from darkroom.domain.processings import get_processing, latest_revision
from darkroom.domain.versions import get_version
from darkroom.errors import Conflict, DarkroomError, InvalidInput, NotFound
from darkroom.text import check_name

__all__ = [
    "TriggerSpec",
    "create_trigger",
    "delete_trigger",
    "fire_due",
    "get_trigger",
    "list_triggers",
    "next_after",
    "set_enabled",
]

log = logging.getLogger(__name__)

MAX_DEBOUNCE_S = 7 * 24 * 3600.0


def next_after(cron: str, after: datetime) -> datetime:
    """The first time the expression names strictly after `after` (UTC)."""
    from cronsim import CronSim, CronSimError

    try:
        found = next(CronSim(cron, after.replace(second=0, microsecond=0)))
    except (CronSimError, StopIteration) as exc:
        raise InvalidInput(f"not a cron expression: {cron!r} ({exc})", code="bad_cron",
                           details={"loc": ["cron"]}) from None  # fmt: skip
    return found if found > after else next_after(cron, found)


@dataclass(frozen=True, slots=True)
class TriggerSpec:
    """What a trigger starts and when (see the module's docstring)."""

    name: str
    kind: str
    pipeline: int | str | None = None
    processing: int | str | None = None
    parameters: dict[str, Any] | None = None
    model_version_id: int | None = None
    version_id: int | None = None
    dataset_id: int | None = None
    min_assets: int = 1
    debounce_s: float = 10.0
    cron: str | None = None


def _bad(message: str, field: str) -> InvalidInput:
    return InvalidInput(message, details={"loc": [field]})


def create_trigger(session: Session, principal: Principal, spec: TriggerSpec) -> Trigger:
    """Checked whole: what it starts exists and takes these parameters, what it watches is the
    caller's. It starts from now: assets and versions already there do not fire it."""
    check_name(spec.name, "trigger")
    if spec.kind not in TriggerKind.__members__:
        raise _bad(f"kind is one of {', '.join(TriggerKind.__members__)}", "kind")
    if (spec.pipeline is None) == (spec.processing is None):
        raise _bad("a trigger starts a pipeline or a processing: give one of them", "pipeline")
    trigger = Trigger(organization_id=principal.organization_id, name=spec.name.strip(),
                      kind=spec.kind, created_by=principal.user_id)  # fmt: skip
    if spec.pipeline is not None:
        trigger.pipeline_id = pipelines_domain.get_pipeline(session, principal, spec.pipeline).id
        if spec.parameters or spec.model_version_id is not None:
            raise _bad("a pipeline's steps carry their own parameters and models", "parameters")
    else:
        assert spec.processing is not None
        proc = get_processing(session, principal, spec.processing)
        if proc.target != "dataset_version":
            raise _bad(f"{proc.name!r} does not run on dataset versions", "processing")
        trigger.processing_id = proc.id
        trigger.parameters = resolve_parameters(
            latest_revision(session, proc.id).parameters_schema, spec.parameters
        )
        if proc.needs_model and spec.model_version_id is None:
            raise InvalidInput(f"processing {proc.name!r} needs a model version",
                               code="model_required",
                               details={"loc": ["model_version_id"]})  # fmt: skip
        if spec.model_version_id is not None:
            get_model_version(session, principal, spec.model_version_id)
            trigger.model_version_id = spec.model_version_id
    now = utcnow()
    if spec.kind == TriggerKind.version:
        if spec.dataset_id is None:
            raise _bad("a version trigger watches a dataset: give dataset_id", "dataset_id")
        trigger.dataset_id = get_dataset(session, principal, spec.dataset_id).id
        newest = select(func.max(DatasetVersion.id)).where(
            DatasetVersion.dataset_id == trigger.dataset_id
        )
        trigger.cursor = session.scalar(newest) or 0
    else:
        if spec.version_id is None:
            raise _bad(f"an {spec.kind} trigger needs version_id", "version_id")
        trigger.version_id = get_version(session, principal, spec.version_id).id
    if spec.kind == TriggerKind.assets:
        if not 1 <= spec.min_assets <= 1_000_000:
            raise _bad("min_assets is between 1 and 1000000", "min_assets")
        if not 0 <= spec.debounce_s <= MAX_DEBOUNCE_S:
            raise _bad(f"debounce_s is between 0 and {MAX_DEBOUNCE_S:g}", "debounce_s")
        trigger.min_assets, trigger.debounce_s = spec.min_assets, spec.debounce_s
        newest = select(func.max(Asset.id)).where(Asset.version_id == trigger.version_id)
        trigger.cursor = session.scalar(newest) or 0
    if spec.kind == TriggerKind.schedule:
        if not spec.cron:
            raise _bad("a schedule trigger needs cron, e.g. '0 3 * * *'", "cron")
        trigger.cron = spec.cron.strip()
        trigger.next_fire_at = next_after(trigger.cron, now)
    try:
        with session.begin_nested():
            session.add(trigger)
    except IntegrityError:
        raise Conflict(f"a trigger named {spec.name!r} exists", code="name_taken") from None
    return trigger


def get_trigger(session: Session, principal: Principal, trigger_id: int) -> Trigger:
    found = session.get(Trigger, trigger_id)
    if found is None or found.organization_id != principal.organization_id:
        raise NotFound.of("trigger", trigger_id)
    return found


def list_triggers(session: Session, principal: Principal, page: PageRequest) -> Page[Trigger]:
    stmt = select(Trigger).where(Trigger.organization_id == principal.organization_id)
    return paginate(session, stmt, Trigger.id, page)


def set_enabled(session: Session, principal: Principal, trigger_id: int, enabled: bool) -> Trigger:
    """Re-enabled, it starts from now (what arrived while it was off does not fire it)."""
    trigger = get_trigger(session, principal, trigger_id)
    if enabled and not trigger.enabled:
        _skip_to_now(session, trigger)
    trigger.enabled = enabled
    session.flush()
    return trigger


def _skip_to_now(session: Session, trigger: Trigger) -> None:
    if trigger.kind == TriggerKind.assets:
        newest = select(func.max(Asset.id)).where(Asset.version_id == trigger.version_id)
        trigger.cursor = session.scalar(newest) or 0
    elif trigger.kind == TriggerKind.version:
        newest = select(func.max(DatasetVersion.id)).where(
            DatasetVersion.dataset_id == trigger.dataset_id
        )
        trigger.cursor = session.scalar(newest) or 0
    elif trigger.cron:
        trigger.next_fire_at = next_after(trigger.cron, utcnow())


def delete_trigger(session: Session, principal: Principal, trigger_id: int) -> None:
    session.delete(get_trigger(session, principal, trigger_id))
    session.flush()


# -- firing --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Event:
    target_version_id: int
    cursor: int | None = None  # the new cursor
    next_fire_at: datetime | None = None  # the new next_fire_at


def _due(session: Session, trigger: Trigger, now: datetime) -> _Event | None:
    if trigger.kind == TriggerKind.assets:
        assert trigger.version_id is not None
        count, newest, first_at = session.execute(
            select(func.count(Asset.id), func.max(Asset.id), func.min(Asset.created_at)).where(
                Asset.version_id == trigger.version_id, Asset.id > trigger.cursor
            )
        ).one()
        if not count:
            return None
        quiet_enough = first_at is not None and now - first_at >= timedelta(
            seconds=trigger.debounce_s
        )
        if count >= trigger.min_assets or quiet_enough:
            return _Event(trigger.version_id, cursor=newest)
        return None
    if trigger.kind == TriggerKind.version:
        found = session.scalar(
            select(func.min(DatasetVersion.id)).where(
                DatasetVersion.dataset_id == trigger.dataset_id,
                DatasetVersion.id > trigger.cursor,
                DatasetVersion.produced_by_job_id.is_(None),
            )
        )
        return None if found is None else _Event(found, cursor=found)
    if trigger.next_fire_at is not None and trigger.next_fire_at <= now and trigger.cron:
        assert trigger.version_id is not None
        return _Event(trigger.version_id, next_fire_at=next_after(trigger.cron, now))
    return None


def _claim(session: Session, trigger: Trigger, event: _Event, now: datetime) -> bool:
    """Moves the trigger past the event if no one else did: True when this caller fires."""
    stmt = update(Trigger).where(Trigger.id == trigger.id, Trigger.enabled.is_(True))
    values: dict[str, Any] = {"fired": Trigger.fired + 1, "last_fired_at": now}
    if event.cursor is not None:
        stmt = stmt.where(Trigger.cursor == trigger.cursor)
        values["cursor"] = event.cursor
    else:
        stmt = stmt.where(Trigger.next_fire_at == trigger.next_fire_at)
        values["next_fire_at"] = event.next_fire_at
    done = session.execute(stmt.values(**values).returning(Trigger.id)).first()
    return done is not None


def _launch(session: Session, trigger: Trigger, target_version_id: int) -> None:
    principal = Principal(trigger.organization_id, trigger.created_by)
    if trigger.pipeline_id is not None:
        run = pipelines_domain.launch_pipeline(session, principal, trigger.pipeline_id,
                                               target_version_id)  # fmt: skip
        run.trigger_id = trigger.id
        for job in pipelines_domain.step_jobs(session, run.id).values():
            job.trigger_id = trigger.id
    else:
        assert trigger.processing_id is not None
        job = jobs_domain.launch(
            session, principal, processing=trigger.processing_id,
            target_version_id=target_version_id, model_version_id=trigger.model_version_id,
            parameters=trigger.parameters,
        )  # fmt: skip
        job.trigger_id = trigger.id
    session.flush()


def fire_due(sessions: SessionFactory, now: datetime | None = None) -> int:
    """Fires every enabled trigger whose event is due, each in its own transaction; answers how
    many fired. A launch the trigger cannot make any more (a processing's schema changed, the
    version was deleted) is kept as its `last_error`, and the event is consumed."""
    fired = 0
    when = now or utcnow()
    with session_scope(sessions, write=False) as session:  # most ticks: nothing is due
        enabled = session.scalars(select(Trigger).where(Trigger.enabled.is_(True)))
        due = [t.id for t in enabled if _due(session, t, when) is not None]
    for trigger_id in due:
        try:
            with session_scope(sessions) as session:
                trigger = session.get(Trigger, trigger_id)
                event = None if trigger is None else _due(session, trigger, when)
                if trigger is None or event is None or not _claim(session, trigger, event, when):
                    continue
                try:
                    with session.begin_nested():
                        _launch(session, trigger, event.target_version_id)
                    error = None
                except DarkroomError as exc:
                    error = exc.message
                    log.warning("trigger %s could not launch: %s", trigger.name, exc.message)
                session.execute(update(Trigger).where(Trigger.id == trigger_id)
                                .values(last_error=error))  # fmt: skip
                fired += error is None
        except Exception:
            log.exception("trigger %s: firing failed", trigger_id)
    return fired
