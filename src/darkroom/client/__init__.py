"""Python client for the darkroom REST API; the CLI and the runtime SDK are built on it.

    from darkroom.client import Client
    with Client.from_env() as dr:
        ds = dr.create_dataset("cats")
        v = dr.create_version(ds["id"], "v1")
        dr.upload_assets(v["id"], ["cat.jpg"])

Answers are the API's JSON as dicts. Errors raise `ApiError` with the API's code and message.
`DARKROOM_URL` (default http://127.0.0.1:8000) and `DARKROOM_TOKEN` (default: the admin-token
file of the local darkroom home) configure `from_env`.
"""

from __future__ import annotations

import os
from types import TracebackType

import httpx

from darkroom.client._automation import AutomationApi
from darkroom.client._datasets import DatasetsApi
from darkroom.client._deployments import DeploymentsApi
from darkroom.client._models import ModelsApi
from darkroom.client._models import zip_folder as zip_folder  # its module-level home before
from darkroom.client._processings import ProcessingsApi
from darkroom.client._runtime import RunTokenApi
from darkroom.client._transport import (
    DEFAULT_TIMEOUT_S,
    DEFAULT_URL,
    JSON,
    ApiError,
    default_token,
    tls_context,
)

__all__ = ["DEFAULT_URL", "ApiError", "Client"]


class Client(DatasetsApi, ModelsApi, ProcessingsApi, RunTokenApi, DeploymentsApi, AutomationApi):
    """A synchronous client; use as a context manager or call `close()`."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
        socket: str | None = None,
        retry_for_s: float = 0.0,
    ) -> None:
        """`socket`: reach the server over this Unix socket instead of TCP (how a sandboxed run
        talks to it); `url` then only names the server in messages.

        `retry_for_s`: how long to keep retrying, with backoff, a request that could not reach
        the server or got 502/503/504 — only requests that are safe to repeat: GET, PUT,
        DELETE, and writes sent with an `Idempotency-Key` (the runtime's). 0: never retry."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self.retry_for_s = retry_for_s
        if socket is not None and transport is None:
            # Plain HTTP on a Unix socket: no certificates to load (70 ms of every run's start).
            transport = httpx.HTTPTransport(uds=socket, verify=False)
        self._http = httpx.Client(
            base_url=f"{self.url}/api/v1", headers=headers, timeout=timeout, transport=transport,
            verify=tls_context() if transport is None else True,
        )  # fmt: skip

    @classmethod
    def from_env(cls, url: str | None = None, token: str | None = None) -> Client:
        return cls(url or os.environ.get("DARKROOM_URL", DEFAULT_URL), token or default_token())

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- health -----------------------------------------------------------------------------

    def health(self) -> JSON:
        return self._json("GET", "/health")

    def list_workers(self) -> list[JSON]:
        """The workers claiming runs: executor, slots, GPUs and free GPUs, last seen."""
        return list(self._json("GET", "/workers")["items"])


# Shown as darkroom.client's own (reprs, tracebacks, docs), as httpx does for its names.
for _public in (ApiError, Client):
    _public.__module__ = __name__
