"""Evaluations: a model version measured on a dataset version's ground truth.

A `model-evaluation` run computes the metrics and records them here with its run token; the
record names the model version and the dataset version of the run's job. Ground truth is what
people drew: shapes of annotations authored by users, never runs' or imported predictions.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from darkroom.db.models import Annotation, Asset, AuthorKind, Evaluation, Job, Shape, ShapeKind
from darkroom.domain.accounts import Principal
from darkroom.domain.model_registry import get_model_version
from darkroom.errors import Forbidden, InvalidInput, NotFound

__all__ = [
    "GROUND_TRUTH_KINDS",
    "check_ground_truth",
    "get_evaluation",
    "list_evaluations",
    "record",
]

GROUND_TRUTH_KINDS = (ShapeKind.rectangle, ShapeKind.polygon)


def check_ground_truth(session: Session, version_id: int) -> None:
    """Refuses (422) a version without a box or polygon drawn by a person: nothing to measure a
    model against."""
    has_truth = session.scalar(
        select(Shape.id)
        .join(Annotation, Annotation.id == Shape.annotation_id)
        .join(Asset, Asset.id == Annotation.asset_id)
        .where(
            Asset.version_id == version_id,
            Annotation.author_kind == AuthorKind.user,
            Shape.kind.in_(GROUND_TRUTH_KINDS),
        )
        .limit(1)
    )
    if has_truth is None:
        raise InvalidInput(
            "the version has no ground truth: no box or polygon drawn by a person (runs' and "
            "imported predictions do not count). Annotate or import annotations first.",
            code="no_ground_truth",
            details={"version_id": version_id},
        )


def record(session: Session, principal: Principal, metrics: dict[str, Any]) -> Evaluation:
    """Stores the metrics the caller's run computed, for its job's model and dataset versions."""
    if principal.run_id is None or principal.job_id is None:
        raise Forbidden("only a model-evaluation run records an evaluation")
    job = session.get(Job, principal.job_id)
    if job is None or job.model_version_id is None:
        raise InvalidInput("this run's job has no model version to evaluate", code="model_required")
    evaluation = Evaluation(
        model_version_id=job.model_version_id, dataset_version_id=job.target_version_id,
        job_id=job.id, run_id=principal.run_id, metrics=metrics,
    )  # fmt: skip
    session.add(evaluation)
    session.flush()
    return evaluation


def list_evaluations(
    session: Session, principal: Principal, model_version_id: int
) -> list[Evaluation]:
    """The model version's evaluations made in the caller's organization (a public model's
    other users keep theirs), newest first: several are compared side by side."""
    get_model_version(session, principal, model_version_id)
    stmt = (
        select(Evaluation)
        .join(Job, Job.id == Evaluation.job_id)
        .where(
            Evaluation.model_version_id == model_version_id,
            Job.organization_id == principal.organization_id,
        )
        .order_by(Evaluation.id.desc())
    )
    return list(session.scalars(stmt))


def get_evaluation(session: Session, principal: Principal, evaluation_id: int) -> Evaluation:
    """One evaluation made in the caller's organization (404 otherwise)."""
    found = session.scalar(
        select(Evaluation)
        .join(Job, Job.id == Evaluation.job_id)
        .where(Evaluation.id == evaluation_id, Job.organization_id == principal.organization_id)
    )
    if found is None:
        raise NotFound.of("evaluation", evaluation_id)
    return found
