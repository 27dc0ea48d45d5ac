"""How the CLI prints: Rich tables for people, JSON (`--json`) for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from darkroom.client import ApiError

__all__ = ["JsonOpt", "console", "fail", "print_object", "print_rows"]

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
# Where `serve` and `worker` execute runs.
ExecutorOpt = Annotated[
    str | None,
    typer.Option(help="local (processes here) or ray (Ray jobs) (env DARKROOM_EXECUTOR)"),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(help="The Ray cluster's dashboard address (env DARKROOM_RAY_ADDRESS)"),
]


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def print_rows(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], as_json: bool, title: str = ""
) -> None:
    """A list: a JSON array with `--json`, otherwise a table of `columns`."""
    if as_json:
        print_json(list(rows))
        return
    if not rows:
        console.print(f"[dim]no {title or 'items'}[/dim]")
        return
    table = Table(title=title or None)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*(_cell(row.get(col)) for col in columns))
    console.print(table)


def print_object(obj: dict[str, Any], as_json: bool) -> None:
    """One object: JSON with `--json`, otherwise `key: value` lines."""
    if as_json:
        print_json(obj)
        return
    for key, value in obj.items():
        console.print(f"[bold]{key}[/bold]: {_cell(value)}")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return str(value)


def fail(error: ApiError | str, code: int = 1) -> NoReturn:
    message = error.message if isinstance(error, ApiError) else error
    err_console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)
