"""A dataset's lineage: which version was made from which, by what.

Each version's source is the version the job that produced it ran on (with that job's
processing, revision and pipeline run), else its parent (a person's copy). Jobs that worked in
place (a pre-annotation, stats) are counted on the version they ran on.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from darkroom.db.models import DatasetVersion, Job, PipelineRun
from darkroom.domain.accounts import Principal
from darkroom.domain.datasets import get_dataset

__all__ = ["Made", "dataset_lineage"]


@dataclass(frozen=True, slots=True)
class Made:
    """A version and what made it."""

    version: DatasetVersion
    source_id: int | None  # the version it was made from, in this dataset
    job_id: int | None = None
    processing: str | None = None
    revision: int | None = None
    pipeline_run_id: int | None = None
    pipeline: str | None = None
    jobs_on_it: int = 0  # jobs that ran on it
    job_number: int | None = None  # what pages call the job that made it


def dataset_lineage(session: Session, principal: Principal, dataset_id: int) -> list[Made]:
    """The dataset's versions oldest first (a source before what it made), previews left out."""
    dataset = get_dataset(session, principal, dataset_id)
    found = list(session.scalars(
        select(DatasetVersion)
        .where(DatasetVersion.dataset_id == dataset.id, DatasetVersion.preview_of_id.is_(None))
        .order_by(DatasetVersion.id)
    ))  # fmt: skip
    ids = {v.id for v in found}
    producers = {v.produced_by_job_id for v in found if v.produced_by_job_id is not None}
    jobs = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(producers)))}
    run_ids = {j.pipeline_run_id for j in jobs.values() if j.pipeline_run_id is not None}
    pipeline_runs = {r.id: r for r in session.scalars(
        select(PipelineRun).where(PipelineRun.id.in_(run_ids)))}  # fmt: skip
    counts: dict[int, int] = {version_id: n for version_id, n in session.execute(
        select(Job.target_version_id, func.count(Job.id))
        .where(Job.target_version_id.in_(ids)).group_by(Job.target_version_id)
    )}  # fmt: skip
    out = []
    for version in found:
        job = jobs.get(version.produced_by_job_id or 0)
        source = job.target_version_id if job is not None else version.parent_version_id
        if source not in ids or source == version.id:
            source = version.parent_version_id if version.parent_version_id in ids else None
        pipeline_run = pipeline_runs.get(job.pipeline_run_id or 0) if job else None
        out.append(Made(
            version, source, job.id if job else None, job.processing.name if job else None,
            job.runs[-1].revision.number if job and job.runs else None,
            pipeline_run.id if pipeline_run else None,
            pipeline_run.pipeline.name if pipeline_run else None, counts.get(version.id, 0),
            job.number if job else None,
        ))  # fmt: skip
    return out
