"""Webhooks: the ends of runs, jobs and pipeline runs posted to a URL, signed, retried.

A delivery is written in the transaction that ends the run (an outbox: a crash loses none and
invents none); `engine.webhook_sender` posts it. The body is the event as JSON; the
`X-Darkroom-Signature` header is `sha256=` and the hex HMAC-SHA256 of the exact body bytes under
the webhook's secret, so a receiver checks it before it parses anything. A delivery that does not
get a 2xx is retried after `BACKOFF_S` (1 s, 5 s, 30 s, 2 min, 10 min) and failed after
`MAX_ATTEMPTS`; each webhook keeps its delivery log.

Destinations whose address is private, loopback, link-local, multicast or reserved are refused
(at creation, and again at each send: a name may resolve elsewhere later) unless the admin
allows them (`DARKROOM_WEBHOOKS_ALLOW_PRIVATE`): a webhook must not be a way into the server's
own network.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from darkroom.db.models import (
    Job,
    PipelineRun,
    Run,
    Webhook,
    WebhookDelivery,
    utcnow,
)
from darkroom.domain.accounts import Principal
from darkroom.domain.pagination import Page, PageRequest, paginate
from darkroom.errors import InvalidInput, NotFound

__all__ = [
    "BACKOFF_S",
    "EVENTS",
    "MAX_ATTEMPTS",
    "SIGNATURE_HEADER",
    "DestinationRefused",
    "body_of",
    "check_destination",
    "claim_delivery",
    "create_webhook",
    "delete_webhook",
    "due_deliveries",
    "get_webhook",
    "list_deliveries",
    "list_webhooks",
    "on_runs_ended",
    "record_attempt",
    "sign",
    "update_webhook",
]

EVENTS = ("run.ended", "job.ended", "pipeline_run.ended")
BACKOFF_S = (1.0, 5.0, 30.0, 120.0, 600.0)
MAX_ATTEMPTS = len(BACKOFF_S) + 1
SIGNATURE_HEADER = "X-Darkroom-Signature"


class DestinationRefused(InvalidInput):
    code = "destination_refused"


def check_destination(url: str, allow_private: bool) -> None:
    """Refuses a URL that is not http(s), or whose host resolves to an address inside a
    private, loopback, link-local, multicast or reserved range (unless `allow_private`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationRefused("a webhook URL is http:// or https:// with a host",
                                 details={"loc": ["url"]})  # fmt: skip
    if allow_private:
        return
    try:
        found = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise DestinationRefused(f"the webhook's host {parts.hostname!r} does not resolve: {exc}",
                                 details={"loc": ["url"]}) from None  # fmt: skip
    for *_, address in found:
        ip = ipaddress.ip_address(address[0])
        if (
            ip.is_private
            or ip.is_loopback
            or ip.is_link_local
            or ip.is_multicast
            or (ip.is_reserved or ip.is_unspecified)
        ):
            raise DestinationRefused(
                f"the webhook's host {parts.hostname!r} is {ip}, a private or local address; "
                "an admin allows those with DARKROOM_WEBHOOKS_ALLOW_PRIVATE=true",
                details={"loc": ["url"]},
            )


def _events(events: Iterable[str] | None) -> list[str]:
    chosen = list(events or EVENTS)
    unknown = [e for e in chosen if e not in EVENTS]
    if unknown or not chosen:
        raise InvalidInput(f"events are among {', '.join(EVENTS)}", details={"loc": ["events"]})
    return sorted(set(chosen))


def create_webhook(
    session: Session,
    principal: Principal,
    url: str,
    events: Iterable[str] | None = None,
    secret: str | None = None,
    *,
    allow_private: bool = False,
) -> Webhook:
    """A webhook; its secret (generated unless given) signs every body."""
    check_destination(url, allow_private)
    if secret is not None and not 16 <= len(secret) <= 200:
        raise InvalidInput("a secret has 16 to 200 characters", details={"loc": ["secret"]})
    webhook = Webhook(organization_id=principal.organization_id, url=url,
                      secret=secret or secrets.token_urlsafe(32), events=_events(events),
                      created_by=principal.user_id)  # fmt: skip
    session.add(webhook)
    session.flush()
    return webhook


def get_webhook(session: Session, principal: Principal, webhook_id: int) -> Webhook:
    found = session.get(Webhook, webhook_id)
    if found is None or found.organization_id != principal.organization_id:
        raise NotFound.of("webhook", webhook_id)
    return found


def list_webhooks(session: Session, principal: Principal, page: PageRequest) -> Page[Webhook]:
    stmt = select(Webhook).where(Webhook.organization_id == principal.organization_id)
    return paginate(session, stmt, Webhook.id, page)


def update_webhook(
    session: Session,
    principal: Principal,
    webhook_id: int,
    *,
    enabled: bool | None = None,
    url: str | None = None,
    events: Iterable[str] | None = None,
    allow_private: bool = False,
) -> Webhook:
    webhook = get_webhook(session, principal, webhook_id)
    if url is not None:
        check_destination(url, allow_private)
        webhook.url = url
    if events is not None:
        webhook.events = _events(events)
    if enabled is not None:
        webhook.enabled = enabled
    session.flush()
    return webhook


def delete_webhook(session: Session, principal: Principal, webhook_id: int) -> None:
    session.delete(get_webhook(session, principal, webhook_id))
    session.flush()


def list_deliveries(
    session: Session, principal: Principal, webhook_id: int, page: PageRequest
) -> Page[WebhookDelivery]:
    webhook = get_webhook(session, principal, webhook_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id)
    return paginate(session, stmt, WebhookDelivery.id, page)


# -- events ----------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _run_payload(run: Run) -> dict[str, Any]:
    took = None
    if run.started_at is not None and run.finished_at is not None:
        took = (run.finished_at - run.started_at).total_seconds()
    return {"id": run.id, "job_id": run.job_id, "attempt": run.attempt, "status": run.status,
            "started_at": _iso(run.started_at), "finished_at": _iso(run.finished_at),
            "running_time_s": took, "failure_reason": run.failure_reason,
            "error_summary": run.error_summary}  # fmt: skip


def _job_payload(job: Job) -> dict[str, Any]:
    return {"id": job.id, "number": job.number, "processing": job.processing.name,
            "status": job.runs[-1].status,
            "target_version_id": job.target_version_id, "model_version_id": job.model_version_id,
            "target_deployment_id": job.target_deployment_id,
            "pipeline_run_id": job.pipeline_run_id, "pipeline_step": job.pipeline_step,
            "trigger_id": job.trigger_id, "runs": len(job.runs)}  # fmt: skip


def on_runs_ended(session: Session, run_ids: Iterable[int]) -> int:
    """Writes the deliveries these ended runs owe (in the caller's transaction): run.ended and
    job.ended for each, pipeline_run.ended when a step's end ends its pipeline run."""
    from darkroom.domain.pipelines import step_states

    written = 0
    for run_id in run_ids:
        run = session.get(Run, run_id)
        if run is None:
            continue
        job = session.get(Job, run.job_id)
        if job is None:
            continue
        stmt = select(Webhook).where(Webhook.organization_id == job.organization_id,
                                     Webhook.enabled.is_(True))  # fmt: skip
        hooks = list(session.scalars(stmt))
        if not hooks:
            continue
        session.refresh(job, ["runs"])
        now = utcnow()
        events: list[tuple[str, dict[str, Any]]] = [
            ("run.ended", {"run": _run_payload(run), "job": _job_payload(job)}),
            ("job.ended", {"job": _job_payload(job)}),
        ]
        if job.pipeline_run_id is not None:
            pipeline_run = session.get(PipelineRun, job.pipeline_run_id)
            if pipeline_run is not None:
                status, steps = step_states(session, pipeline_run)
                if status in ("succeeded", "failed", "cancelled"):
                    events.append(("pipeline_run.ended", {"pipeline_run": {
                        "id": pipeline_run.id, "pipeline": pipeline_run.pipeline.name,
                        "revision": pipeline_run.revision.number, "status": status,
                        "input_version_id": pipeline_run.input_version_id,
                        "steps": {s.name: s.status for s in steps},
                    }}))  # fmt: skip
        for hook in hooks:
            for event, data in events:
                if event in hook.events:
                    payload = {"event": event, "at": now.isoformat(), **data}
                    session.add(WebhookDelivery(webhook_id=hook.id, event=event, payload=payload,
                                                next_attempt_at=now))  # fmt: skip
                    written += 1
    session.flush()
    return written


# -- sending ---------------------------------------------------------------------------------


def body_of(delivery: WebhookDelivery) -> bytes:
    """The exact bytes posted and signed (the delivery's id included, for receivers that
    dedupe retries)."""
    return json.dumps({"delivery_id": delivery.id, **delivery.payload}, sort_keys=True,
                      separators=(",", ":")).encode()  # fmt: skip


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def due_deliveries(session: Session, now: datetime, limit: int = 20) -> list[int]:
    stmt = (select(WebhookDelivery.id)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at).limit(limit))  # fmt: skip
    return list(session.scalars(stmt))


def claim_delivery(session: Session, delivery_id: int, now: datetime, lease_s: float) -> bool:
    """Takes a due delivery for one attempt (pushing its time past the attempt's lease, so a
    sender killed mid-post leaves it to be retried): True when this sender has it."""
    done = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending",
               WebhookDelivery.next_attempt_at <= now)
        .values(next_attempt_at=now + timedelta(seconds=lease_s),
                attempts=WebhookDelivery.attempts + 1)
        .returning(WebhookDelivery.id)
    ).first()  # fmt: skip
    return done is not None


def record_attempt(
    session: Session, delivery_id: int, status_code: int | None, error: str | None
) -> WebhookDelivery | None:
    """The attempt's outcome: delivered on a 2xx; else retried after its backoff, or failed."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        return None
    now = utcnow()
    delivery.last_status_code, delivery.last_error = status_code, error
    if status_code is not None and 200 <= status_code < 300:
        delivery.status, delivery.delivered_at, delivery.last_error = "delivered", now, None
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = "failed"
    else:
        delivery.next_attempt_at = now + timedelta(seconds=BACKOFF_S[delivery.attempts - 1])
    session.flush()
    return delivery
