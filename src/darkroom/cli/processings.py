"""`darkroom processing …`"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from darkroom.cli.context import client_from
from darkroom.cli.output import JsonOpt, fail, print_object, print_rows

app = typer.Typer(no_args_is_help=True)


def _row(p: dict[str, Any]) -> dict[str, Any]:
    return {**p, "revision": p["latest_revision"]["number"], "public": p["is_public"]}


def _schema(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        fail(f"{path}: not a JSON file ({exc})")


@app.command("list")
def list_(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Public processings and your organization's own."""
    with client_from(ctx) as client:
        rows = [_row(p) for p in client.list_processings()]
    print_rows(
        rows, ("id", "name", "type", "revision", "public", "description"), json_, "processings"
    )


@app.command("show")
def show(ctx: typer.Context, processing: str, json_: JsonOpt = False) -> None:
    """A processing (id or name) with its latest revision."""
    with client_from(ctx) as client:
        print_object(client.get_processing(processing), json_)


@app.command("create")
def create(
    ctx: typer.Context,
    name: str,
    code: Annotated[
        Path, typer.Option(help="Python file with a `run(ctx)` function.", exists=True)
    ],
    type: Annotated[str, typer.Option(help="Processing type.")] = "custom",
    entrypoint: Annotated[str, typer.Option(help="Function to call.")] = "run",
    parameters_schema: Annotated[
        Path | None, typer.Option("--schema", help="JSON Schema of the parameters (a file).")
    ] = None,
    description: str = "",
    needs_model: Annotated[bool, typer.Option(help="Launches must name a model version.")] = False,
    timeout_s: Annotated[int, typer.Option(help="Runs are stopped after this long.")] = 7200,
    json_: JsonOpt = False,
) -> None:
    """Create a processing from a Python file (its first revision)."""
    fields: dict[str, Any] = {
        "name": name, "type": type, "description": description, "needs_model": needs_model,
        "timeout_s": timeout_s,
        "source": {"kind": "inline", "code": code.read_text(), "entrypoint": entrypoint},
    }  # fmt: skip
    if (schema := _schema(parameters_schema)) is not None:
        fields["parameters_schema"] = schema
    with client_from(ctx) as client:
        print_object(client.create_processing(**fields), json_)


@app.command("update")
def update(
    ctx: typer.Context,
    processing: str,
    code: Annotated[Path | None, typer.Option(help="New Python file.", exists=True)] = None,
    entrypoint: Annotated[str, typer.Option(help="Function to call.")] = "run",
    parameters_schema: Annotated[
        Path | None, typer.Option("--schema", help="New JSON Schema.")
    ] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    timeout_s: Annotated[int | None, typer.Option(help="New timeout.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Edit a processing; new code, schema or timeout make a new revision (re-runs use it)."""
    fields: dict[str, Any] = {}
    if code is not None:
        fields["source"] = {"kind": "inline", "code": code.read_text(), "entrypoint": entrypoint}
    if (schema := _schema(parameters_schema)) is not None:
        fields["parameters_schema"] = schema
    if description is not None:
        fields["description"] = description
    if timeout_s is not None:
        fields["timeout_s"] = timeout_s
    with client_from(ctx) as client:
        print_object(client.update_processing(processing, **fields), json_)
