"""Who may predict on which deployment, remembered for a moment: a predict costs no query.

Every predict needs the caller's token checked and the deployment's status read; both answers
are kept for `TTL_S` per (token, deployment) and dropped at once when this server changes a
deployment or a token (its routes call `forget`). A change made through another server, or a
token revoked in the database, takes effect within `TTL_S`. Refusals are remembered too, so a
flood of bad tokens costs one query per token and period.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any

from darkroom.db.engine import SessionFactory, session_scope
from darkroom.db.models import DeploymentStatus
from darkroom.domain import deployments
from darkroom.domain.accounts import authenticate
from darkroom.errors import Conflict, DarkroomError, Forbidden

__all__ = ["Admitted", "Gate"]

TTL_S = 2.0  # seconds an answer is reused
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Admitted:
    """What a predict needs of its deployment."""

    id: int
    name: str
    status: str
    settings: dict[str, Any]


class Gate:
    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions
        self._known: dict[tuple[str, str], tuple[float, Admitted | DarkroomError]] = {}
        self._lock = threading.Lock()

    def cached(self, token: str | None, ref: str) -> Admitted | None:
        """The remembered answer (raising a remembered refusal), or None: ask `admit`."""
        entry = self._known.get(self._key(token, ref))
        if entry is None or entry[0] < time.monotonic():
            return None
        return self._answer(entry[1])

    def admit(self, token: str | None, ref: str) -> Admitted:
        """Checks the token and the deployment in the database (a worker thread's call)."""
        try:
            with session_scope(self.sessions, write=False) as session:
                principal = authenticate(session, token)
                if principal.is_run or principal.is_replica:
                    raise Forbidden(f"a {'run' if principal.is_run else 'replica'}'s token "
                                    "cannot call predict")  # fmt: skip
                found = deployments.get_deployment(session, principal, ref)
                answer: Admitted | DarkroomError = Admitted(
                    found.id, found.name, found.status, found.revision.settings
                )
                if found.status == DeploymentStatus.stopped:
                    answer = Conflict(f"deployment {found.name!r} is stopped; start it to "
                                      "predict", code="deployment_stopped")  # fmt: skip
                elif found.status == DeploymentStatus.failed:
                    answer = Conflict(f"deployment {found.name!r} failed: {found.status_reason}",
                                      code="deployment_failed",
                                      details={"reason": found.status_reason})  # fmt: skip
        except DarkroomError as exc:
            answer = exc
        with self._lock:
            if len(self._known) >= MAX_ENTRIES:
                self._known.clear()
            self._known[self._key(token, ref)] = (time.monotonic() + TTL_S, answer)
        return self._answer(answer)

    def forget(self) -> None:
        with self._lock:
            self._known.clear()

    @staticmethod
    def _key(token: str | None, ref: str) -> tuple[str, str]:
        return hashlib.sha256((token or "").encode()).hexdigest(), ref

    @staticmethod
    def _answer(answer: Admitted | DarkroomError) -> Admitted:
        if isinstance(answer, DarkroomError):
            raise answer
        return answer
