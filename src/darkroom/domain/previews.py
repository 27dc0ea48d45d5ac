"""Previews: a dataset processing tried on a few assets before it is launched on a version.

A preview is a real job, run like any other (sandbox, logs, running time, usage), on a scratch
copy of the version's first N assets with their labels and annotations: its writes land in the
copy, never in the version. The copy (`preview_of_id` set) and any version its run makes are
hidden from version lists and deleted with the version they preview. What a preview shows is
the assets of its output version when the processing made one (augmentation, smart versions),
else its copy's assets with the boxes the run drew (pre-annotation). A preview takes no job
number: an organization's jobs stay numbered 1, 2, 3… however many previews were tried.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from darkroom.db.models import Asset, DatasetVersion, Job, TargetKind
from darkroom.domain import jobs, processings, versions
from darkroom.domain.accounts import Principal
from darkroom.errors import InvalidInput, NotFound

__all__ = ["MAX_PREVIEW_ASSETS", "Preview", "get_preview", "launch_preview"]

MAX_PREVIEW_ASSETS = 16


@dataclass(frozen=True, slots=True)
class Preview:
    job: Job
    version: DatasetVersion  # what to show: the run's output version, or the scratch copy
    assets: list[Asset]


def launch_preview(
    session: Session,
    principal: Principal,
    *,
    processing: int | str,
    version_id: int,
    assets: int,
    model_version_id: int | None = None,
    parameters: dict[str, Any] | None = None,
    executor: Any = None,
) -> Job:
    """Copies the version's first `assets` assets into a hidden scratch version and launches
    the processing on it; the parameters are checked as a launch checks them."""
    if not 1 <= assets <= MAX_PREVIEW_ASSETS:
        raise InvalidInput(f"a preview runs on 1 to {MAX_PREVIEW_ASSETS} assets",
                           details={"loc": ["preview_assets"]})  # fmt: skip
    proc = processings.get_processing(session, principal, processing)
    if proc.target != TargetKind.dataset_version:
        raise InvalidInput(f"{proc.name} runs on model versions: it has no preview",
                           code="no_preview")  # fmt: skip
    version = versions.get_version(session, principal, version_id)
    first = session.scalars(
        select(Asset.id).where(Asset.version_id == version.id).order_by(Asset.id).limit(assets)
    ).all()
    if not first:
        raise InvalidInput(f"version {version.name!r} has no asset to preview on",
                           code="nothing_to_preview")  # fmt: skip
    scratch = versions.create_version(
        session, principal, version.dataset_id, f"preview-{secrets.token_hex(4)}",
        description=f"preview of {version.name} on {len(first)} assets",
        parent_version_id=version.id, only=set(first),
    )  # fmt: skip
    scratch.preview_of_id = version.id
    return jobs.launch(
        session, principal, processing=proc.id, target_version_id=scratch.id,
        model_version_id=model_version_id, parameters=parameters, executor=executor,
        numbered=False,
    )  # fmt: skip


def get_preview(session: Session, principal: Principal, job_id: int) -> Preview:
    """A preview job with what it shows (its assets are those of the copy until it ends)."""
    job = jobs.get_job(session, principal, job_id)
    scratch = session.get(DatasetVersion, job.target_version_id) if job.target_version_id else None
    if scratch is None or scratch.preview_of_id is None:
        raise NotFound(f"job {job_id} is not a preview")
    made = jobs.output_versions_of(session, principal, job.id)
    shown = made[-1] if made else scratch
    items = session.scalars(
        select(Asset).where(Asset.version_id == shown.id).order_by(Asset.id).limit(48)
    ).all()
    return Preview(job=job, version=shown, assets=list(items))
