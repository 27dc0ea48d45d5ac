"""`darkroom job …`: launch processings, follow their runs, re-run and cancel them."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape

from darkroom.cli.context import client_from
from darkroom.cli.output import JsonOpt, console, fail, print_object, print_rows
from darkroom.client import Client
from darkroom.job_labels import job_label

app = typer.Typer(no_args_is_help=True)

STREAM_STYLE = {"stderr": "yellow", "system": "cyan"}


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """`k=v` pairs; values are JSON when they parse (8, true, [1,2]), strings otherwise."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--param {pair!r}: expected key=value")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def duration(run: dict[str, Any]) -> str:
    if run.get("duration_s") is not None:
        return f"{run['duration_s']:.1f} s"
    return ""


def job_row(job: dict[str, Any]) -> dict[str, Any]:
    latest = job["runs"][-1]
    return {
        "id": job["id"], "#": job_label(job.get("number")),
        "processing": job["processing"]["name"],
        "version": job["target_version_id"], "status": job["status"], "runs": len(job["runs"]),
        "running time": duration(latest), "created_at": job["created_at"],
    }  # fmt: skip


def follow(client: Client, run_id: int, as_json: bool) -> dict[str, Any]:
    """Prints the run's log as it lands; returns the run once it ended."""
    end: dict[str, Any] = {}
    for event, data in client.follow_logs(run_id):
        if event == "end":
            end = data
        elif as_json:
            typer.echo(json.dumps(data))
        else:
            style = STREAM_STYLE.get(data["stream"])
            text = escape(data["text"])
            console.print(f"[{style}]{text}[/{style}]" if style else text, highlight=False)
    return end


def finish(run: dict[str, Any], as_json: bool) -> None:
    if not as_json:
        summary = f"run {run['id']} {run['status']} {duration(run)}"
        if run.get("error_summary"):
            summary += f": {run['error_summary']}"
        console.print(summary, style="green" if run["status"] == "succeeded" else "red")
    if run["status"] != "succeeded":
        raise typer.Exit(1)


@app.command("launch")
def launch(
    ctx: typer.Context,
    processing: str,
    version: Annotated[
        int | None,
        typer.Option(
            "--version",
            "-v",
            help="Target dataset version id (for a processing on models: its sample images).",
        ),
    ] = None,
    model_version: Annotated[
        int | None, typer.Option(help="Model version id (the target of a processing on models).")
    ] = None,
    deployment: Annotated[
        str | None, typer.Option(help="Deployment id or name (a processing on deployments).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="On a deployment: predictions from (ISO time with zone).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="... until (default: now).")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="key=value")] = None,
    follow_: Annotated[bool, typer.Option("--follow", "-f", help="Stream the log.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Launch a processing on a version, a model version or a deployment's predictions (the
    last day's unless --since/--until); with --follow, stream its log until it ends."""
    with client_from(ctx) as client:
        job = client.launch_job(
            processing, version, model_version_id=model_version,
            parameters=parse_params(param or []) or None, target_deployment_id=deployment,
            window=(since, until) if since or until else None,
        )  # fmt: skip
        if not follow_:
            print_object(job, json_)
            return
        if not json_:
            console.print(f"job {job['id']}, run {job['runs'][0]['id']}: {job['status']}")
        finish(follow(client, job["runs"][0]["id"], json_), json_)


@app.command("list")
def list_(
    ctx: typer.Context,
    version: Annotated[
        int | None, typer.Option("--version", "-v", help="Only this version's.")
    ] = None,
    status: Annotated[str | None, typer.Option(help="Latest run status.")] = None,
    processing: Annotated[str | None, typer.Option(help="Processing id or name.")] = None,
    json_: JsonOpt = False,
) -> None:
    """The jobs history: processing, version, status and running time of the latest run."""
    with client_from(ctx) as client:
        jobs = client.list_jobs(version_id=version, status=status, processing=processing)
    if json_:
        print_rows(jobs, (), True)
        return
    rows = [job_row(j) for j in jobs]
    print_rows(
        rows,
        ("id", "#", "processing", "version", "status", "runs", "running time", "created_at"),
        False,
        "jobs",
    )


@app.command("show")
def show(ctx: typer.Context, job_id: int, json_: JsonOpt = False) -> None:
    """A job with all its runs side by side."""
    with client_from(ctx) as client:
        job = client.get_job(job_id)
    if json_:
        print_object(job, True)
        return
    print_object(job_row(job) | {"parameters": job["parameters"]}, False)
    rows = [
        {
            **r,
            "running time": duration(r),
            "progress": f"{r['progress']['done']}/{r['progress']['total'] or '?'}",
        }
        for r in job["runs"]
    ]
    print_rows(rows, ("id", "attempt", "revision", "status", "started_at", "running time",
                      "exit_code", "progress", "error_summary"), False, "runs")  # fmt: skip


@app.command("logs")
def logs(
    ctx: typer.Context,
    job_id: int,
    run: Annotated[int | None, typer.Option(help="Run id (default: the latest run).")] = None,
    follow_: Annotated[
        bool, typer.Option("--follow", "-f", help="Stream until the run ends.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """A run's log; --follow streams new lines live."""
    with client_from(ctx) as client:
        job = client.get_job(job_id)
        run_id = run or job["runs"][-1]["id"]
        if run_id not in {r["id"] for r in job["runs"]}:
            fail(f"run {run_id} is not a run of job {job_id}")
        if follow_:
            finish(follow(client, run_id, json_), json_)
            return
        after, lines = 0, []
        while True:
            page = client.run_logs(run_id, after=after)
            lines += page["items"]
            if page["next"] is None:
                break
            after = page["next"]
    if json_:
        print_rows(lines, (), True)
    else:
        for line in lines:
            console.print(escape(line["text"]), highlight=False)


@app.command("rerun")
def rerun(
    ctx: typer.Context,
    job_id: int,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="key=value")] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Skip the assets the job's earlier runs finished."),
    ] = False,
    follow_: Annotated[bool, typer.Option("--follow", "-f", help="Stream the log.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Run the job again with the processing's current revision (refused while one runs)."""
    with client_from(ctx) as client:
        new = client.rerun_job(job_id, parse_params(param) if param else None, resume=resume)
        if not follow_:
            print_object(new, json_)
            return
        finish(follow(client, new["id"], json_), json_)


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    job_id: int,
    json_: JsonOpt = False,
) -> None:
    """Cancel the job's active run."""
    with client_from(ctx) as client:
        job = client.get_job(job_id)
        active = [r for r in job["runs"] if r["status"] in ("pending", "running")]
        if not active:
            fail(f"job {job_id} has no pending or running run")
        print_object(client.cancel_run(active[0]["id"]), json_)
