"""`darkroom model …` and `darkroom model-version …`"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from darkroom.cli.context import client_from
from darkroom.cli.output import JsonOpt, print_object, print_rows

app = typer.Typer(no_args_is_help=True)
version_app = typer.Typer(no_args_is_help=True)


@app.command("create")
def create(ctx: typer.Context, name: str, description: str = "", json_: JsonOpt = False) -> None:
    """Create a model (its weights come as versions)."""
    with client_from(ctx) as client:
        print_object(client.create_model(name, description), json_)


@app.command("list")
def list_(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Your organization's models and public ones."""
    with client_from(ctx) as client:
        print_rows(
            client.list_models(), ("id", "name", "description", "is_public"), json_, "models"
        )


@app.command("show")
def show(ctx: typer.Context, model_id: int, json_: JsonOpt = False) -> None:
    """A model with its versions."""
    with client_from(ctx) as client:
        model = client.get_model(model_id)
        model["versions"] = client.list_model_versions(model_id)
    if json_:
        print_object(model, True)
        return
    print_object({k: v for k, v in model.items() if k != "versions"}, False)
    print_rows(
        model["versions"], ("id", "name", "family", "input_size", "labels"), False, "versions"
    )


@version_app.command("upload")
def upload(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            help="ONNX weights, a TensorFlow OD frozen graph (.pb), or a TensorFlow OD "
            "SavedModel (its folder or a zip of it)",
        ),
    ],
    model: Annotated[int, typer.Option("--model", "-m", help="Model id.")],
    name: Annotated[str, typer.Option(help="Version name.")] = "v1",
    labels: Annotated[
        str | None,
        typer.Option(help="Labels in output order, comma-separated (default: from the file)."),
    ] = None,
    label_map: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="A TF-OD label map (.pbtxt)."),
    ] = None,
    family: Annotated[
        str | None, typer.Option(help="yolov5, yolov8, yolo11 or tf-od (default: detected).")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Upload weights as a new version of a model."""
    label_list = [x.strip() for x in labels.split(",") if x.strip()] if labels else None
    with client_from(ctx) as client:
        version = client.upload_model_version(
            model, file, name=name, family=family, labels=label_list, label_map=label_map
        )
    print_object(version, json_)


@version_app.command("show")
def show_version(ctx: typer.Context, version_id: int, json_: JsonOpt = False) -> None:
    """A model version: family, labels, input size."""
    with client_from(ctx) as client:
        print_object(client.get_model_version(version_id), json_)
