"""Organizations, users and API tokens: who is calling, and the first admin of a fresh home."""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from darkroom.db.models import ApiToken, Organization, Run, RunStatus, User
from darkroom.errors import Unauthorized

__all__ = [
    "AdminBootstrap",
    "Principal",
    "authenticate",
    "create_organization",
    "create_run_token",
    "create_token",
    "ensure_admin",
    "hash_token",
    "new_token",
    "user_names",
]

TOKEN_PREFIX = "drk_"
DEFAULT_ORGANIZATION = "default"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller; every domain call is scoped to its organization."""

    organization_id: int
    user_id: int
    is_admin: bool = False
    # Set for run-scoped tokens: the run, its job and the version the job targets.
    run_id: int | None = None
    job_id: int | None = None
    target_version_id: int | None = None
    target_deployment_id: int | None = None
    # Set for deployment tokens: the deployment whose predict they may call.
    deployment_id: int | None = None
    # A replica token: its deployment's weights and nothing else (not even predict).
    is_replica: bool = False

    @property
    def is_run(self) -> bool:
        return self.run_id is not None

    @property
    def is_deployment(self) -> bool:
        return self.deployment_id is not None


@dataclass(frozen=True, slots=True)
class AdminBootstrap:
    created: bool
    token_path: Path | None  # where a generated token was written, if it was


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def create_organization(session: Session, name: str) -> Organization:
    org = Organization(name=name)
    session.add(org)
    session.flush()
    return org


def create_token(session: Session, user: User, name: str, token: str | None = None) -> str:
    """Creates a token for `user` and returns its secret, which is not stored anywhere."""
    token = token or new_token()
    session.add(ApiToken(user_id=user.id, name=name, token_hash=hash_token(token)))
    session.flush()
    return token


def create_user(
    session: Session, organization: Organization, name: str, *, is_admin: bool = False
) -> User:
    user = User(organization_id=organization.id, name=name, is_admin=is_admin)
    session.add(user)
    session.flush()
    return user


def ensure_admin(session: Session, token_path: Path, admin_token: str | None) -> AdminBootstrap:
    """Creates the first organization, admin user and token when the database has no user.

    The token is `admin_token` when given (e.g. `DARKROOM_ADMIN_TOKEN`), otherwise a new one
    written to `token_path` with mode 0600. Later starts with a given `admin_token` make sure it
    still authenticates, so a fixed token in the environment keeps working.
    """
    admin = session.scalars(select(User).where(User.is_admin).order_by(User.id)).first()
    if admin is not None:
        if admin_token is not None:
            known = session.scalar(
                select(ApiToken.id).where(ApiToken.token_hash == hash_token(admin_token))
            )
            if known is None:
                create_token(session, admin, "admin (environment)", admin_token)
        return AdminBootstrap(created=False, token_path=None)

    org = create_organization(session, DEFAULT_ORGANIZATION)
    admin = create_user(session, org, "admin", is_admin=True)
    if admin_token is not None:
        create_token(session, admin, "admin (environment)", admin_token)
        return AdminBootstrap(created=True, token_path=None)

    token = create_token(session, admin, "admin")
    token_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    os.chmod(token_path, 0o600)
    return AdminBootstrap(created=True, token_path=token_path)


def authenticate(session: Session, token: str | None) -> Principal:
    if not token:
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    row = session.scalar(
        select(ApiToken).where(
            ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None)
        )
    )
    if row is None:
        raise Unauthorized("invalid or revoked token")
    if row.deployment_id is not None:
        return Principal(row.user.organization_id, row.user_id, deployment_id=row.deployment_id,
                         is_replica=row.scope == "replica")  # fmt: skip
    if row.run_id is None:
        return Principal(row.user.organization_id, row.user_id, row.user.is_admin)
    run = session.get(Run, row.run_id)
    if run is None or run.status != RunStatus.running:
        raise Unauthorized(f"run token expired: run {row.run_id} is not running")
    return Principal(
        row.user.organization_id,
        row.user_id,
        False,
        run_id=run.id,
        job_id=run.job_id,
        target_version_id=run.job.target_version_id,
        target_deployment_id=run.job.target_deployment_id,
    )


def user_names(session: Session, principal: Principal) -> dict[int, str]:
    """User id -> name within the caller's organization (pages show who launched what)."""
    rows = session.execute(
        select(User.id, User.name).where(User.organization_id == principal.organization_id)
    )
    return {user_id: name for user_id, name in rows}


def create_run_token(session: Session, run: Run, user_id: int) -> str:
    """A token that acts for `run` only, and only while the run is running."""
    token = new_token()
    session.add(
        ApiToken(user_id=user_id, name=f"run {run.id}", token_hash=hash_token(token), run_id=run.id)
    )
    session.flush()
    return token
