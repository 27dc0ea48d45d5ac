"""`darkroom dataset …`"""

from __future__ import annotations

from typing import Annotated

import typer

from darkroom.cli.context import client_from
from darkroom.cli.output import JsonOpt, console, print_object, print_rows

app = typer.Typer(no_args_is_help=True)

COLUMNS = ("id", "name", "description", "created_at")


@app.command("create")
def create(
    ctx: typer.Context,
    name: str,
    description: Annotated[str, typer.Option(help="What the dataset holds.")] = "",
    json_: JsonOpt = False,
) -> None:
    """Create a dataset."""
    with client_from(ctx) as client:
        print_object(client.create_dataset(name, description), json_)


@app.command("list")
def list_(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """List datasets."""
    with client_from(ctx) as client:
        print_rows(client.list_datasets(), COLUMNS, json_, "datasets")


@app.command("show")
def show(ctx: typer.Context, dataset_id: int, json_: JsonOpt = False) -> None:
    """Show a dataset and its versions."""
    with client_from(ctx) as client:
        dataset = client.get_dataset(dataset_id)
        dataset["versions"] = client.list_versions(dataset_id)
    print_object(dataset, json_)


@app.command("delete")
def delete(
    ctx: typer.Context,
    dataset_id: int,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Delete a dataset with all its versions, assets and annotations."""
    with client_from(ctx) as client:
        dataset = client.get_dataset(dataset_id)
        if not yes and not typer.confirm(
            f"delete dataset {dataset['name']!r} and all its versions?"
        ):
            raise typer.Exit(1)
        client.delete_dataset(dataset_id)
    if json_:
        print_object({"id": dataset_id, "deleted": True}, True)
    else:
        console.print(f"deleted dataset {dataset_id}")
