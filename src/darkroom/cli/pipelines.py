"""`darkroom pipeline …`: define chains of processings, launch them, follow and re-run them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from darkroom.cli.context import client_from
from darkroom.cli.output import JsonOpt, console, fail, print_object, print_rows

app = typer.Typer(no_args_is_help=True)

STEP_COLUMNS = ("name", "processing", "input", "status", "job_id", "output_version_ids")
ENDED = ("succeeded", "failed", "cancelled")


def read_definition(path: Path) -> dict[str, Any]:
    """A pipeline file (YAML or JSON): `name`, optional `description`, and `steps`."""
    import yaml

    from darkroom import safe_yaml

    try:
        found = safe_yaml.load(path.read_bytes())
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    except yaml.YAMLError as exc:
        fail(f"{path} is not YAML or JSON: {exc}")
    if not isinstance(found, dict) or not isinstance(found.get("steps"), list):
        fail(f"{path}: a pipeline file has `name` and a list of `steps`")
    return found


def _show_run(run: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_object(run, True)
        return
    print_object({k: run[k] for k in ("id", "pipeline", "revision", "input_version_id",
                                      "status")}, False)  # fmt: skip
    print_rows(run["steps"], STEP_COLUMNS, False, "steps")


@app.command("create")
def create(
    ctx: typer.Context,
    file: Annotated[Path, typer.Option("--file", "-f", help="The pipeline, YAML or JSON.")],
    json_: JsonOpt = False,
) -> None:
    """Create the pipeline the file defines, or add a revision when it exists."""
    from darkroom.client import ApiError

    definition = read_definition(file)
    name = definition.get("name") or file.stem
    with client_from(ctx) as client:
        try:
            made = client.create_pipeline(name, definition["steps"],
                                          definition.get("description", ""))  # fmt: skip
        except ApiError as exc:
            if exc.code != "name_taken":
                raise
            revision = client.add_pipeline_revision(name, definition["steps"])
            made = {**client.get_pipeline(name), "revision": revision}
    if json_:
        print_object(made, True)
        return
    console.print(f"pipeline {made['name']} revision {made['revision']['number']}")
    print_rows(made["revision"]["steps"], ("name", "processing", "input", "model_version_id"),
               False, "steps")  # fmt: skip


@app.command("list")
def list_(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Your organization's pipelines."""
    with client_from(ctx) as client:
        rows = client.list_pipelines()
    shown = rows if json_ else [{**p, "revision": p["revision"]["number"],
                                 "steps": len(p["revision"]["steps"])} for p in rows]  # fmt: skip
    print_rows(shown, ("id", "name", "revision", "steps", "description"), json_, "pipelines")


@app.command("launch")
def launch(
    ctx: typer.Context,
    pipeline: str,
    version: Annotated[int, typer.Option(help="The input dataset version.")],
    revision: Annotated[int | None, typer.Option(help="A revision (default: newest).")] = None,
    follow_: Annotated[bool, typer.Option("--follow", help="Wait for its end.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Run a pipeline on a version; with --follow, print each step's status until it ends
    (exit 1 when it fails)."""
    with client_from(ctx) as client:
        run = client.launch_pipeline(pipeline, version, revision)
        if follow_:
            run = _follow(client, run, json_)
    _show_run(run, json_)
    if follow_ and run["status"] != "succeeded":
        raise typer.Exit(1)


def _follow(client: Any, run: dict[str, Any], as_json: bool) -> dict[str, Any]:
    said: dict[str, str] = {}
    while True:
        for step in run["steps"]:
            if not as_json and said.get(step["name"]) != step["status"]:
                said[step["name"]] = step["status"]
                job = f" (job {step['job_id']})" if step["job_id"] else ""
                console.print(f"{step['name']}: {step['status']}{job}", highlight=False)
        if run["status"] in ENDED:
            return run
        time.sleep(0.5)
        run = client.get_pipeline_run(run["id"])


@app.command("show")
def show(ctx: typer.Context, run_id: int, json_: JsonOpt = False) -> None:
    """A pipeline run: its status and each step's job, status and output versions."""
    with client_from(ctx) as client:
        _show_run(client.get_pipeline_run(run_id), json_)


@app.command("runs")
def runs(ctx: typer.Context, pipeline: str, json_: JsonOpt = False) -> None:
    """A pipeline's runs, newest last."""
    with client_from(ctx) as client:
        rows = client.list_pipeline_runs(pipeline)
    print_rows(rows, ("id", "revision", "input_version_id", "status", "created_at"), json_,
               "pipeline runs")  # fmt: skip


@app.command("rerun")
def rerun(
    ctx: typer.Context,
    run_id: int,
    follow_: Annotated[bool, typer.Option("--follow", help="Wait for its end.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Re-run the failed and cancelled steps (after fixing them); the succeeded ones are kept."""
    with client_from(ctx) as client:
        run = client.rerun_pipeline_run(run_id)
        if follow_:
            run = _follow(client, run, json_)
    _show_run(run, json_)
    if follow_ and run["status"] != "succeeded":
        raise typer.Exit(1)


@app.command("cancel")
def cancel(ctx: typer.Context, run_id: int, json_: JsonOpt = False) -> None:
    """Cancel every active step; no other step starts."""
    with client_from(ctx) as client:
        _show_run(client.cancel_pipeline_run(run_id), json_)
