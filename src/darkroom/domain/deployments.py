"""Deployments: a model version served behind an endpoint, as the organization configured it.

A deployment's model version and settings live in numbered revisions that are never edited: a
change (a rollout to another model version, a new threshold) adds one, and the predictions
each record the revision and model version that made them. Its status says what its replicas
do: `starting` until one has loaded the model, `serving`, `stopped` (by a person) or `failed`
(the model cannot load; `status_reason` says why). The replicas themselves are the serving
layer's (`darkroom.serving`), which reads the wanted state from here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from darkroom.db.models import (
    ApiToken,
    Deployment,
    DeploymentRevision,
    DeploymentStatus,
    ModelVersion,
    utcnow,
)
from darkroom.domain.accounts import Principal, hash_token, new_token
from darkroom.domain.model_registry import get_model_version
from darkroom.domain.pagination import Page, PageRequest, paginate
from darkroom.errors import Conflict, Forbidden, InvalidInput, NotFound
from darkroom.inference.defaults import CONFIDENCE_THRESHOLD, IOU_THRESHOLD, MAX_DETECTIONS
from darkroom.text import check_name, is_number

__all__ = [
    "ACTIVE",
    "ServingSettings",
    "create_deployment",
    "create_token",
    "get_deployment",
    "list_deployments",
    "list_revisions",
    "replica_token",
    "revision_weights",
    "revoke_replica_tokens",
    "set_status",
    "start_deployment",
    "stop_deployment",
    "update_deployment",
    "wanted_deployments",
]

# Statuses whose replicas should run.
ACTIVE = (DeploymentStatus.starting, DeploymentStatus.serving)
SERVABLE_FORMATS = ("onnx",)


@dataclass(frozen=True, slots=True)
class ServingSettings:
    """How a deployment serves: thresholds, the labels it keeps (None: all of the model's),
    dynamic batching (a batch waits at most `max_wait_ms` for `max_batch` requests), replica
    processes, the share of requests whose image is stored, and how long predictions are kept
    (None: forever)."""

    confidence_threshold: float = CONFIDENCE_THRESHOLD
    iou_threshold: float = IOU_THRESHOLD
    max_detections: int = MAX_DETECTIONS
    labels: tuple[str, ...] | None = None
    max_batch: int = 8
    max_wait_ms: float = 5.0
    replicas: int = 1
    sampling_rate: float = 0.1
    retention_days: int | None = 30

    # (minimum, maximum) of each number
    BOUNDS = {"confidence_threshold": (0.0, 1.0), "iou_threshold": (0.0, 1.0),
              "max_detections": (1, 10000), "max_batch": (1, 256), "max_wait_ms": (0.0, 1000.0),
              "replicas": (1, 16), "sampling_rate": (0.0, 1.0),
              "retention_days": (1, 36500)}  # fmt: skip

    @classmethod
    def parse(
        cls, given: dict[str, Any] | None, base: ServingSettings | None = None
    ) -> ServingSettings:
        """`given` over `base` (or the defaults), checked: 422 naming `settings.<field>`."""
        values = asdict(base or cls())
        known = {f.name for f in fields(cls)}
        for key, value in (given or {}).items():
            if key not in known:
                raise _bad(key, f"unknown setting (known: {', '.join(sorted(known))})")
            values[key] = value
        for key, (low, high) in cls.BOUNDS.items():
            value = values[key]
            if value is None and key == "retention_days":
                continue
            integral = isinstance(low, int)
            if isinstance(value, bool) or not isinstance(value, int if integral else (int, float)):
                raise _bad(key, f"must be {'an integer' if integral else 'a number'}")
            if not low <= value <= high:
                raise _bad(key, f"must be between {low} and {high}")
        labels = values["labels"]
        if labels is not None:
            if not isinstance(labels, (list, tuple)) or not all(isinstance(x, str) for x in labels):
                raise _bad("labels", "must be a list of label names, or null for all")
            values["labels"] = tuple(labels)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["labels"] = None if self.labels is None else list(self.labels)
        return out


def _bad(key: str, message: str) -> InvalidInput:
    return InvalidInput(f"settings.{key}: {message}", code="invalid_settings",
                        details={"loc": ["settings", key]})  # fmt: skip


def _check_servable(model_version: ModelVersion, settings: ServingSettings) -> None:
    if model_version.format not in SERVABLE_FORMATS:
        raise InvalidInput(
            f"model version {model_version.id} is {model_version.format}: deployments serve "
            "ONNX models (convert it with model-conversion first)",
            code="unsupported_model_format", details={"loc": ["model_version_id"]},
        )  # fmt: skip
    if settings.labels is not None:
        known = {name.lower() for name in model_version.labels}
        unknown = [x for x in settings.labels if x.lower() not in known]
        if unknown:
            raise _bad("labels", f"not labels of the model: {', '.join(unknown)} "
                       f"(it has {', '.join(model_version.labels)})")  # fmt: skip


def create_deployment(
    session: Session,
    principal: Principal,
    *,
    name: str,
    model_version_id: int,
    settings: dict[str, Any] | None = None,
    description: str = "",
) -> Deployment:
    """A deployment of `model_version_id`, starting: its revision 1 holds the settings."""
    name = check_name(name, "deployment")
    model_version = get_model_version(session, principal, model_version_id)
    parsed = ServingSettings.parse(settings)
    _check_servable(model_version, parsed)
    deployment = Deployment(organization_id=principal.organization_id, name=name,
                            description=description, created_by=principal.user_id)  # fmt: skip
    try:
        with session.begin_nested():
            session.add(deployment)
    except IntegrityError:
        raise Conflict(f"a deployment named {name!r} exists", code="already_exists") from None
    _add_revision(session, principal, deployment, model_version.id, parsed)
    return deployment


def _add_revision(
    session: Session,
    principal: Principal,
    deployment: Deployment,
    model_version_id: int,
    settings: ServingSettings,
) -> DeploymentRevision:
    number = 1 if deployment.revision is None else deployment.revision.number + 1
    revision = DeploymentRevision(
        deployment_id=deployment.id, number=number, model_version_id=model_version_id,
        settings=settings.to_dict(), created_by=principal.user_id,
    )  # fmt: skip
    session.add(revision)
    session.flush()
    deployment.revision_id = revision.id
    session.flush()
    session.refresh(deployment, ["revision"])
    return revision


def get_deployment(session: Session, principal: Principal, deployment_id: int | str) -> Deployment:
    """By id or name, in the caller's organization (a deployment token: only its own)."""
    if isinstance(deployment_id, str) and not is_number(deployment_id):
        found = session.scalar(select(Deployment).where(
            Deployment.organization_id == principal.organization_id,
            Deployment.name == deployment_id))  # fmt: skip
    else:
        found = session.get(Deployment, int(deployment_id))
    if found is None or found.organization_id != principal.organization_id:
        raise NotFound.of("deployment", deployment_id)
    if principal.deployment_id is not None and principal.deployment_id != found.id:
        raise Forbidden(f"this deployment token cannot reach deployment {deployment_id}")
    if principal.is_run and principal.target_deployment_id != found.id:
        raise Forbidden(f"this run's token cannot reach deployment {deployment_id}")
    return found


def list_deployments(
    session: Session, principal: Principal, page: PageRequest, model_version_id: int | None = None
) -> Page[Deployment]:
    stmt = select(Deployment).where(Deployment.organization_id == principal.organization_id)
    if model_version_id is not None:
        stmt = stmt.join(DeploymentRevision, DeploymentRevision.id == Deployment.revision_id)
        stmt = stmt.where(DeploymentRevision.model_version_id == model_version_id)
    return paginate(session, stmt, Deployment.id, page)


def list_revisions(
    session: Session, principal: Principal, deployment_id: int | str
) -> list[DeploymentRevision]:
    """Every state the deployment was in, oldest first: its rollout history."""
    deployment = get_deployment(session, principal, deployment_id)
    stmt = select(DeploymentRevision).where(DeploymentRevision.deployment_id == deployment.id)
    return list(session.scalars(stmt.order_by(DeploymentRevision.number)))


def update_deployment(
    session: Session,
    principal: Principal,
    deployment_id: int | str,
    *,
    model_version_id: int | None = None,
    settings: dict[str, Any] | None = None,
    description: str | None = None,
) -> Deployment:
    """A new revision when the model version or a setting changes (a rollout: the serving
    layer starts the new replicas and retires the old ones once these answer)."""
    deployment = get_deployment(session, principal, deployment_id)
    if description is not None:
        deployment.description = description
    current = deployment.revision
    target = current.model_version_id if model_version_id is None else model_version_id
    model_version = get_model_version(session, principal, target)
    parsed = ServingSettings.parse(settings, ServingSettings.parse(current.settings))
    _check_servable(model_version, parsed)
    if target != current.model_version_id or parsed.to_dict() != current.settings:
        _add_revision(session, principal, deployment, target, parsed)
        if deployment.status == DeploymentStatus.failed:  # a fix: try again
            deployment.status, deployment.status_reason = DeploymentStatus.starting, None
    session.flush()
    return deployment


def stop_deployment(session: Session, principal: Principal, deployment_id: int | str) -> Deployment:
    deployment = get_deployment(session, principal, deployment_id)
    deployment.status, deployment.status_reason = DeploymentStatus.stopped, None
    session.flush()
    return deployment


def start_deployment(
    session: Session, principal: Principal, deployment_id: int | str
) -> Deployment:
    """Serves a stopped or failed deployment again (a serving one is left as it is)."""
    deployment = get_deployment(session, principal, deployment_id)
    if deployment.status not in ACTIVE:
        deployment.status, deployment.status_reason = DeploymentStatus.starting, None
        session.flush()
    return deployment


def set_status(
    session: Session, deployment_id: int, revision_id: int, status: str, reason: str | None = None
) -> None:
    """The serving layer's report on the replicas of `revision_id`: ignored when the
    deployment has moved on (stopped, or another revision) since they started."""
    deployment = session.get(Deployment, deployment_id)
    if deployment is None or deployment.revision_id != revision_id:
        return
    if deployment.status not in ACTIVE:
        return
    if deployment.status != status or deployment.status_reason != reason:
        deployment.status, deployment.status_reason = status, reason


def wanted_deployments(session: Session) -> list[Deployment]:
    """Deployments whose replicas should run, on every server."""
    stmt = select(Deployment).where(Deployment.status.in_(list(ACTIVE)))
    return list(session.scalars(stmt.order_by(Deployment.id)))


def create_token(
    session: Session, principal: Principal, deployment_id: int | str, name: str = ""
) -> tuple[ApiToken, str]:
    """A token that may call this deployment's predict and nothing else; its secret is returned
    once and only its hash is kept."""
    deployment = get_deployment(session, principal, deployment_id)
    if principal.deployment_id is not None:
        raise Forbidden("a deployment token cannot make tokens")
    secret = new_token()
    row = ApiToken(user_id=principal.user_id, name=name or f"deployment {deployment.name}",
                   token_hash=hash_token(secret), deployment_id=deployment.id)  # fmt: skip
    session.add(row)
    session.flush()
    return row, secret


def replica_token(session: Session, deployment_id: int, reuse: str | None = None) -> str:
    """The token Ray Serve replicas of this deployment fetch its weights with: `reuse` when it
    is still one of its valid replica tokens (a restarted server keeps the application's
    config as it was, so Serve does not redeploy), else a new one."""
    if reuse:
        row = session.scalar(select(ApiToken).where(
            ApiToken.token_hash == hash_token(reuse), ApiToken.revoked_at.is_(None),
            ApiToken.deployment_id == deployment_id, ApiToken.scope == "replica"))  # fmt: skip
        if row is not None:
            return reuse
    deployment = session.get(Deployment, deployment_id)
    if deployment is None:
        raise NotFound.of("deployment", deployment_id)
    secret = new_token()
    session.add(ApiToken(user_id=deployment.created_by, name=f"replicas of {deployment.name}",
                         token_hash=hash_token(secret), deployment_id=deployment_id,
                         scope="replica"))  # fmt: skip
    session.flush()
    return secret


def revoke_replica_tokens(session: Session, deployment_id: int) -> None:
    """Its replicas are gone: their tokens open nothing any more."""
    rows = session.scalars(select(ApiToken).where(
        ApiToken.deployment_id == deployment_id, ApiToken.scope == "replica",
        ApiToken.revoked_at.is_(None)))  # fmt: skip
    for row in rows:
        row.revoked_at = utcnow()


def revision_weights(
    session: Session, principal: Principal, deployment_id: int | str, number: int
) -> ModelVersion:
    """The model version a revision serves, for its weights: people of the organization, and
    the deployment's replica tokens while it is to serve."""
    deployment = get_deployment(session, principal, deployment_id)
    if principal.is_deployment and not principal.is_replica:
        raise Forbidden("a deployment token can only call its deployment's predict")
    if principal.is_replica and deployment.status not in ACTIVE:
        raise Forbidden(f"deployment {deployment.name!r} is {deployment.status}: its replicas "
                        "fetch nothing")  # fmt: skip
    revision = session.scalar(select(DeploymentRevision).where(
        DeploymentRevision.deployment_id == deployment.id,
        DeploymentRevision.number == number))  # fmt: skip
    if revision is None:
        raise NotFound(f"deployment {deployment.name!r} has no revision {number}")
    return revision.model_version
