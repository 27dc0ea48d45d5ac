"""The client a command uses, built from `--url` / `--token` or the environment."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import typer

from darkroom.cli.output import fail
from darkroom.client import ApiError, Client

__all__ = ["Target", "client_from"]


@dataclass(frozen=True, slots=True)
class Target:
    url: str | None
    token: str | None


@contextmanager
def client_from(ctx: typer.Context) -> Iterator[Client]:
    """A client for the command; an API error ends the command with its message, exit 1."""
    target: Target = ctx.find_root().obj or Target(None, None)
    with Client.from_env(target.url, target.token) as client:
        try:
            yield client
        except ApiError as exc:
            fail(exc)
