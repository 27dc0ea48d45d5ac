"""`darkroom version …`"""

from __future__ import annotations

from typing import Annotated

import typer

from darkroom.cli.context import client_from
from darkroom.cli.output import JsonOpt, print_object, print_rows

app = typer.Typer(no_args_is_help=True)

COLUMNS = ("id", "name", "parent_version_id", "produced_by_job_id", "created_at")


@app.command("create")
def create(
    ctx: typer.Context,
    dataset_id: int,
    name: str,
    parent: Annotated[
        int | None, typer.Option(help="Copy this version's assets and annotations.")
    ] = None,
    description: str = "",
    json_: JsonOpt = False,
) -> None:
    """Create a version of a dataset, empty or as a copy of --parent."""
    with client_from(ctx) as client:
        version = client.create_version(
            dataset_id, name, parent_version_id=parent, description=description
        )
    print_object(version, json_)


@app.command("list")
def list_(ctx: typer.Context, dataset_id: int, json_: JsonOpt = False) -> None:
    """List the versions of a dataset."""
    with client_from(ctx) as client:
        print_rows(client.list_versions(dataset_id), COLUMNS, json_, "versions")


@app.command("show")
def show(ctx: typer.Context, version_id: int, json_: JsonOpt = False) -> None:
    """Show a version."""
    with client_from(ctx) as client:
        print_object(client.get_version(version_id), json_)


@app.command("stats")
def stats(ctx: typer.Context, version_id: int, json_: JsonOpt = False) -> None:
    """Assets, annotated assets and shapes per label of a version."""
    with client_from(ctx) as client:
        result = client.version_stats(version_id)
    if json_:
        print_object(result, True)
        return
    print_object({k: v for k, v in result.items() if k != "labels"}, False)
    print_rows(result["labels"], ("label_id", "name", "color", "shapes"), False, "labels")
