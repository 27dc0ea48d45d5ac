"""`darkroom processing …`"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from darkroom.bundles import Bundle, pack_dir
from darkroom.bundles.scaffold import scaffold
from darkroom.cli.context import client_from
from darkroom.cli.jobs import finish, follow, parse_params
from darkroom.cli.output import JsonOpt, console, fail, print_json, print_object, print_rows
from darkroom.client import ApiError
from darkroom.defaults import RUN_TIMEOUT_S
from darkroom.errors import DarkroomError

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


@app.command("revisions")
def revisions(ctx: typer.Context, processing: str, json_: JsonOpt = False) -> None:
    """Every revision of a processing: number, source, development or not, when."""
    with client_from(ctx) as client:
        items = client.list_revisions(processing)
    rows = [{**r, "source": r["source"].get("kind"), "dev": r["is_dev"],
             "timeout": r["timeout_s"]} for r in items]  # fmt: skip
    if json_:
        print_json(items)
        return
    print_rows(rows, ("number", "source", "dev", "timeout", "created_at"), False, "revisions")


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
    timeout_s: Annotated[
        int, typer.Option(help="Runs are stopped after this long.")
    ] = RUN_TIMEOUT_S,
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


def _pack(folder: Path) -> Bundle:
    """The folder's bundle, checked here with the server's rules before anything is sent."""
    try:
        return pack_dir(folder)
    except DarkroomError as exc:
        fail(exc.message)


def _pushed(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    revision, name = result["revision"], result["processing"]["name"]
    kind = "development revision" if revision["is_dev"] else "revision"
    if result["created"]:
        console.print(f"{name}: {kind} {revision['number']} pushed")
    else:
        console.print(f"{name}: unchanged, still {kind} {revision['number']}")


@app.command("push")
def push(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="The bundle's folder (with darkroom.yaml).")],
    json_: JsonOpt = False,
) -> None:
    """Upload a bundle as the processing's newest revision (created on first push).

    Pushing unchanged files makes no new revision. Re-runs of failed jobs take the new one.
    """
    bundle = _pack(folder)
    with client_from(ctx) as client:
        try:
            _pushed(client.push_bundle(bundle.archive), json_)
        except ApiError as exc:
            fail(exc)


@app.command("init")
def init(
    name: str,
    type: Annotated[str, typer.Option(help="Processing type.")] = "pre_annotation",
    directory: Annotated[Path, typer.Option("--dir", help="Where to create NAME/.")] = Path("."),
) -> None:
    """Create a working example bundle in NAME/ (manifest, code using the SDK, a test)."""
    try:
        from darkroom.domain.processings import check_kinds

        check_kinds(type, "dataset_version")
        target = scaffold(name, type, directory)
    except DarkroomError as exc:
        fail(exc.message)
    except (ValueError, FileExistsError) as exc:
        fail(str(exc))
    console.print(f"created {target}: try `python -m pytest {target / 'tests'}`, then "
                  f"`darkroom processing run-local {target} --version VERSION_ID`")  # fmt: skip


@app.command("run-local")
def run_local(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="The bundle's folder (with darkroom.yaml).")],
    version: Annotated[int, typer.Option("--version", help="Dataset version to run on.")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="key=value (repeatable).")
    ] = None,
    model_version: Annotated[int | None, typer.Option(help="Model version id.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Run the working folder as a real job (a development revision) and follow its log.

    Development revisions do not change what `job launch` and re-runs of other jobs take;
    `processing push` when it works.
    """
    bundle = _pack(folder)
    with client_from(ctx) as client:
        try:
            pushed = client.push_bundle(bundle.archive, dev=True)
            revision = pushed["revision"]["number"]
            job = client.launch_job(
                bundle.manifest.name, version, model_version_id=model_version,
                parameters=parse_params(param or []), revision=revision,
            )  # fmt: skip
        except ApiError as exc:
            fail(exc)
        if not json_:
            console.print(f"job {job['id']}: {bundle.manifest.name} development revision "
                          f"{revision} on version {version}", style="bold")  # fmt: skip
        run = follow(client, job["runs"][-1]["id"], json_)
    finish(run, json_)
