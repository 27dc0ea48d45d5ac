"""`darkroom webhook …`: post the ends of runs, jobs and pipeline runs to a URL, signed."""

from __future__ import annotations

from typing import Annotated

import typer

from darkroom.cli.context import client_from
from darkroom.cli.output import JsonOpt, print_object, print_rows

app = typer.Typer(no_args_is_help=True)


@app.command("create")
def create(
    ctx: typer.Context,
    url: str,
    event: Annotated[
        list[str] | None,
        typer.Option(help="run.ended, job.ended, pipeline_run.ended (repeatable; default all)"),
    ] = None,
    secret: Annotated[str | None, typer.Option(help="Default: generated, printed once.")] = None,
    json_: JsonOpt = False,
) -> None:
    """A webhook; its secret signs each body (header X-Darkroom-Signature: sha256=HMAC)."""
    with client_from(ctx) as client:
        print_object(client.create_webhook(url, event or None, secret), json_)


@app.command("list")
def list_(ctx: typer.Context, json_: JsonOpt = False) -> None:
    with client_from(ctx) as client:
        print_rows(client.list_webhooks(), ("id", "url", "events", "enabled"), json_, "webhooks")


@app.command("deliveries")
def deliveries(ctx: typer.Context, webhook_id: int, json_: JsonOpt = False) -> None:
    """Its delivery log: each event, its status, attempts and last answer."""
    with client_from(ctx) as client:
        rows = client.webhook_deliveries(webhook_id)
    columns = ("id", "event", "status", "attempts", "last_status_code", "last_error", "created_at")
    print_rows(rows, columns, json_, "deliveries")


@app.command("delete")
def delete(ctx: typer.Context, webhook_id: int) -> None:
    with client_from(ctx) as client:
        client.delete_webhook(webhook_id)
