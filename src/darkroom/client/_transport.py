"""The client's plumbing: one httpx client, retries of what is safe to repeat, the API's error
envelope as `ApiError`, and pages walked to the end. Each resource's calls live in a module of
their own (`_datasets`, `_models`, …); `darkroom.client.Client` is all of them."""

from __future__ import annotations

import functools
import logging
import os
import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_S = 60.0
TRANSFER_TIMEOUT_S = 3600.0

JSON = dict[str, Any]

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({502, 503, 504})
RETRY_FIRST_DELAY_S = 0.1
RETRY_MAX_DELAY_S = 2.0


class ApiError(Exception):
    """An error answered by the API (`status` 4xx/5xx) or a server that could not be reached."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})" if status else message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context per process, as httpx would make it: each one loads the CA bundle
    (about 50 ms), and an executor makes clients for every run it prepares."""
    return httpx.create_ssl_context()


def default_token() -> str | None:
    token = os.environ.get("DARKROOM_TOKEN")
    if token:
        return token
    home = Path(os.environ.get("DARKROOM_HOME", Path.home() / ".darkroom"))
    path = home / "admin-token"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


class Transport:
    """Requests to the API; the resource classes' methods are written on these three."""

    url: str
    retry_for_s: float
    _http: httpx.Client

    # -- plumbing ---------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        retryable = method in IDEMPOTENT_METHODS or "Idempotency-Key" in (
            kwargs.get("headers") or {}
        )
        deadline = time.monotonic() + (self.retry_for_s if retryable else 0.0)
        delay = RETRY_FIRST_DELAY_S
        while True:
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if time.monotonic() + delay > deadline:
                    raise ApiError(
                        0, "unreachable", f"cannot reach darkroom at {self.url}: {exc}"
                    ) from exc
                log.warning("%s %s: %s; retrying in %.1f s", method, path, exc, delay)
            else:
                give_up = time.monotonic() + delay > deadline
                if response.status_code not in RETRY_STATUSES or give_up:
                    raise_for_error(response)
                    return response
                log.warning("%s %s: HTTP %d; retrying in %.1f s",
                            method, path, response.status_code, delay)  # fmt: skip
            time.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_DELAY_S)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        return None if response.status_code == 204 else response.json()

    def _iter(
        self, path: str, params: dict[str, Any] | None = None, limit: int = 500
    ) -> Iterator[JSON]:
        query: dict[str, Any] = {k: v for k, v in (params or {}).items() if v is not None}
        query["limit"] = limit
        while True:
            page = self._json("GET", path, params=query)
            yield from page["items"]
            if page["next"] is None:
                return
            query["after"] = page["next"]


def idempotency_key() -> dict[str, str]:
    """A fresh key per logical write; `_send` reuses it for that write's retries."""
    return {"Idempotency-Key": uuid.uuid4().hex}


def raise_for_error(response: httpx.Response) -> None:
    """Raises the API's error envelope as ApiError (reads a streamed body first)."""
    if not response.is_error:
        return
    response.read()
    try:
        err = response.json()["error"]
        raise ApiError(response.status_code, err["code"], err["message"], err.get("details"))
    except (ValueError, KeyError, TypeError):
        raise ApiError(
            response.status_code, "http_error", response.text[:500] or response.reason_phrase
        ) from None
