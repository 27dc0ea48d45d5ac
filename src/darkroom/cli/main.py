"""`darkroom`: the command line entry point."""

from __future__ import annotations

from typing import Annotated

import typer

from darkroom import __version__
from darkroom.cli import (
    admin,
    assets,
    datasets,
    demo,
    deployments,
    jobs,
    labels,
    models,
    pipelines,
    processings,
    serve,
    transfer,
    triggers,
    versions,
    webhooks,
    worker,
    workers,
)
from darkroom.cli.context import Target

app = typer.Typer(
    name="darkroom",
    help="Run processings on computer-vision datasets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(help="Server URL (env DARKROOM_URL, default http://127.0.0.1:8000)"),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(help="API token (env DARKROOM_TOKEN, default: the local admin-token file)"),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    ctx.obj = Target(url, token)


app.command("serve")(serve.serve)
app.command("worker")(worker.worker)
app.command("demo")(demo.demo)
app.command("workers")(workers.workers)
app.add_typer(datasets.app, name="dataset", help="Create, list, show and delete datasets.")
app.add_typer(versions.app, name="version", help="Dataset versions and their statistics.")
app.add_typer(labels.app, name="label", help="Labels of a version.")
app.add_typer(assets.app, name="asset", help="Upload and list images.")
app.add_typer(transfer.import_app, name="import", help="Import COCO, YOLO or VOC into a version.")
app.add_typer(transfer.export_app, name="export", help="Export a version as COCO, YOLO or VOC.")
app.add_typer(models.app, name="model", help="Models (ONNX detectors, TensorFlow OD graphs).")
app.add_typer(models.version_app, name="model-version", help="Upload and show model versions.")
app.add_typer(processings.app, name="processing", help="Processings and their revisions.")
app.add_typer(jobs.app, name="job", help="Launch, follow, re-run and cancel jobs.")
app.add_typer(deployments.app, name="deployment", help="Serve model versions; predictions.")
app.add_typer(pipelines.app, name="pipeline", help="Chains of processings: define, launch, re-run.")
app.add_typer(triggers.app, name="trigger", help="Start pipelines and processings by themselves.")
app.add_typer(webhooks.app, name="webhook", help="Signed posts when runs, jobs, pipelines end.")
app.add_typer(admin.app, name="admin", help="Maintenance: blob garbage collection.")

if __name__ == "__main__":
    app()
