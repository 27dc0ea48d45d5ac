"""The client a command uses, built from `--url` / `--token` or the environment."""

from __future__ import annotations

from dataclasses import dataclass

import typer

from darkroom.client import Client

__all__ = ["Target", "client_from"]


@dataclass(frozen=True, slots=True)
class Target:
    url: str | None
    token: str | None


def client_from(ctx: typer.Context) -> Client:
    target: Target = ctx.find_root().obj or Target(None, None)
    return Client.from_env(target.url, target.token)
