"""`darkroom label …`"""

from __future__ import annotations

from typing import Annotated

import typer

from darkroom.cli.context import client_from
from darkroom.cli.output import JsonOpt, fail, print_object, print_rows

app = typer.Typer(no_args_is_help=True)


@app.command("add")
def add(
    ctx: typer.Context,
    version_id: int,
    names: Annotated[list[str], typer.Argument(help="One or more label names.")],
    color: Annotated[str | None, typer.Option(help="#rrggbb (only with one name).")] = None,
    json_: JsonOpt = False,
) -> None:
    """Add labels to a version (the only labels pre-annotation may write)."""
    if color and len(names) > 1:
        fail("--color goes with a single label name")
    with client_from(ctx) as client:
        created = [client.create_label(version_id, name, color) for name in names]
    if len(created) == 1:
        print_object(created[0], json_)
    else:
        print_rows(created, ("id", "name", "color", "position"), json_, "labels")


@app.command("list")
def list_(ctx: typer.Context, version_id: int, json_: JsonOpt = False) -> None:
    """List the labels of a version in order."""
    with client_from(ctx) as client:
        rows = client.list_labels(version_id)
    print_rows(rows, ("id", "name", "color", "position"), json_, "labels")
