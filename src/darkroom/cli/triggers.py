"""`darkroom trigger …`: start a pipeline or a processing on new assets, versions, a schedule."""

from __future__ import annotations

from typing import Annotated

import typer

from darkroom.cli.context import client_from
from darkroom.cli.jobs import parse_params
from darkroom.cli.output import JsonOpt, print_object, print_rows

app = typer.Typer(no_args_is_help=True)

COLUMNS = ("id", "name", "kind", "enabled", "fired", "last_fired_at", "next_fire_at", "last_error")


@app.command("create")
def create(
    ctx: typer.Context,
    name: str,
    on: Annotated[str, typer.Option(help="assets | version | schedule")],
    pipeline: Annotated[str | None, typer.Option(help="The pipeline it launches.")] = None,
    processing: Annotated[str | None, typer.Option(help="...or the processing.")] = None,
    version: Annotated[int | None, typer.Option(help="assets, schedule: the version.")] = None,
    dataset: Annotated[int | None, typer.Option(help="version: the dataset watched.")] = None,
    min_assets: Annotated[int, typer.Option(help="assets: fire when this many arrived...")] = 1,
    debounce_s: Annotated[float, typer.Option(help="...or this long after the first.")] = 10.0,
    cron: Annotated[str | None, typer.Option(help="schedule: e.g. '0 3 * * *' (UTC).")] = None,
    model_version: Annotated[int | None, typer.Option(help="For a processing.")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="key=value")] = None,
    json_: JsonOpt = False,
) -> None:
    """A trigger; it starts from now: what is already there does not fire it."""
    with client_from(ctx) as client:
        made = client.create_trigger(
            name, on, pipeline=pipeline, processing=processing, version_id=version,
            dataset_id=dataset, min_assets=min_assets, debounce_s=debounce_s, cron=cron,
            model_version_id=model_version, parameters=parse_params(param or []) or None,
        )  # fmt: skip
    print_object(made, json_)


@app.command("list")
def list_(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Your organization's triggers, how often each fired and its last error."""
    with client_from(ctx) as client:
        print_rows(client.list_triggers(), COLUMNS, json_, "triggers")


@app.command("disable")
def disable(ctx: typer.Context, trigger_id: int, json_: JsonOpt = False) -> None:
    with client_from(ctx) as client:
        print_object(client.set_trigger_enabled(trigger_id, False), json_)


@app.command("enable")
def enable(ctx: typer.Context, trigger_id: int, json_: JsonOpt = False) -> None:
    """Enabled again, it starts from now."""
    with client_from(ctx) as client:
        print_object(client.set_trigger_enabled(trigger_id, True), json_)


@app.command("delete")
def delete(ctx: typer.Context, trigger_id: int) -> None:
    """What it launched stays."""
    with client_from(ctx) as client:
        client.delete_trigger(trigger_id)
