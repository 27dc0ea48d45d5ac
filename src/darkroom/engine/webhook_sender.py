"""Posts the webhook deliveries the database owes: a thread in every `darkroom serve`.

It looks for due deliveries every `POLL_S`, takes each with a conditional update (two servers
never post the same attempt; a server killed mid-post leaves it due again after `LEASE_S`), and
posts it outside any transaction, `WORKERS` at a time, each with `TIMEOUT_S`. What to retry and
when is `domain.webhooks`'.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import httpx

from darkroom import __version__
from darkroom.background import Loop
from darkroom.db.engine import SessionFactory, session_scope
from darkroom.db.models import Webhook, WebhookDelivery, utcnow
from darkroom.domain import webhooks

__all__ = ["WebhookSender"]

log = logging.getLogger(__name__)

POLL_S = 0.2
LEASE_S = 60.0
TIMEOUT_S = 10.0
WORKERS = 4


class WebhookSender(Loop):
    def __init__(self, sessions: SessionFactory, *, allow_private: bool = False) -> None:
        super().__init__("darkroom-webhooks", POLL_S, after_error_s=1.0)
        self.sessions, self.allow_private = sessions, allow_private
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="darkroom-webhook")
        self._http = httpx.Client(timeout=TIMEOUT_S, follow_redirects=False,
                                  headers={"User-Agent": f"darkroom/{__version__}"})  # fmt: skip

    def step(self) -> None:
        self.send_due()

    def finish(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._http.close()

    def stop(self, timeout_s: float = TIMEOUT_S + 5) -> None:
        super().stop(timeout_s)

    def send_due(self) -> int:
        """Takes and posts every due delivery; answers how many it took."""
        now = utcnow()
        with session_scope(self.sessions, write=False) as session:
            due = webhooks.due_deliveries(session, now)
        taken = []
        for delivery_id in due:
            with session_scope(self.sessions) as session:
                if webhooks.claim_delivery(session, delivery_id, now, LEASE_S):
                    taken.append(delivery_id)
        for future in [self._pool.submit(self._post, d) for d in taken]:
            future.result()
        return len(taken)

    def _post(self, delivery_id: int) -> None:
        with session_scope(self.sessions, write=False) as session:
            delivery = session.get(WebhookDelivery, delivery_id)
            webhook = None if delivery is None else session.get(Webhook, delivery.webhook_id)
            if delivery is None or webhook is None:
                return
            body = webhooks.body_of(delivery)
            url, secret, event = webhook.url, webhook.secret, delivery.event
        status_code, error = None, None
        try:
            webhooks.check_destination(url, self.allow_private)  # a name may move
            response = self._http.post(url, content=body, headers={
                "Content-Type": "application/json", "X-Darkroom-Event": event,
                "X-Darkroom-Delivery": str(delivery_id),
                webhooks.SIGNATURE_HEADER: webhooks.sign(secret, body),
            })  # fmt: skip
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}: {response.text[:200]}"
        except webhooks.DestinationRefused as exc:
            error = exc.message
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        with session_scope(self.sessions) as session:
            webhooks.record_attempt(session, delivery_id, status_code, error)
        if error:
            log.info("webhook delivery %s to %s: %s", delivery_id, url, error)
