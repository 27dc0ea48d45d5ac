"""Webhooks and their delivery logs (see `domain.webhooks`)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from darkroom.domain import webhooks
from darkroom.http.deps import PageDep, PrincipalDep, SessionDep, SettingsDep
from darkroom.http.schemas import (
    DbInt,
    Page,
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryPublic,
    WebhookPublic,
    WebhookUpdate,
)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@router.post("", response_model=WebhookCreated, status_code=status.HTTP_201_CREATED)
def create_webhook(
    body: WebhookCreate, session: SessionDep, principal: PrincipalDep, settings: SettingsDep
) -> WebhookCreated:
    """Posts the chosen events to `url`, signed; a private or loopback destination is a 422
    unless the admin allows those (`DARKROOM_WEBHOOKS_ALLOW_PRIVATE`)."""
    made = webhooks.create_webhook(session, principal, body.url, body.events, body.secret,
                                   allow_private=settings.webhooks_allow_private)  # fmt: skip
    return WebhookCreated.model_validate(made)


@router.get("", response_model=Page[WebhookPublic])
def list_webhooks(
    session: SessionDep, principal: PrincipalDep, page: PageDep
) -> Page[WebhookPublic]:
    result = webhooks.list_webhooks(session, principal, page)
    return Page[WebhookPublic](items=[WebhookPublic.model_validate(w) for w in result.items],
                               next=result.next)  # fmt: skip


@router.get("/{webhook_id}", response_model=WebhookPublic)
def get_webhook(webhook_id: DbInt, session: SessionDep, principal: PrincipalDep) -> WebhookPublic:
    return WebhookPublic.model_validate(webhooks.get_webhook(session, principal, webhook_id))


@router.patch("/{webhook_id}", response_model=WebhookPublic)
def update_webhook(
    webhook_id: DbInt,
    body: WebhookUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> WebhookPublic:
    found = webhooks.update_webhook(session, principal, webhook_id, enabled=body.enabled,
                                    url=body.url, events=body.events,
                                    allow_private=settings.webhooks_allow_private)  # fmt: skip
    return WebhookPublic.model_validate(found)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_webhook(webhook_id: DbInt, session: SessionDep, principal: PrincipalDep) -> Response:
    webhooks.delete_webhook(session, principal, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries", response_model=Page[WebhookDeliveryPublic])
def list_deliveries(
    webhook_id: DbInt, session: SessionDep, principal: PrincipalDep, page: PageDep
) -> Page[WebhookDeliveryPublic]:
    """Its delivery log: each event, its attempts, the last answer or error."""
    result = webhooks.list_deliveries(session, principal, webhook_id, page)
    return Page[WebhookDeliveryPublic](
        items=[WebhookDeliveryPublic.model_validate(d) for d in result.items], next=result.next
    )
