"""`darkroom deployment …`: serve a model version, predict, read the log, roll out, stop."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from darkroom.cli.context import client_from
from darkroom.cli.jobs import parse_params
from darkroom.cli.output import JsonOpt, print_object, print_rows

app = typer.Typer(no_args_is_help=True)

SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", "-s",
        help="setting=value (repeatable): confidence_threshold, labels='[\"a\"]', max_batch, "
        "max_wait_ms, replicas, sampling_rate, retention_days, ...",
    ),
]  # fmt: skip
COLUMNS = ("id", "name", "status", "model_version_id", "revision", "status_reason")


def _row(d: dict) -> dict:
    return {**d, "revision": d["revision"]["number"]}


@app.command("create")
def create(
    ctx: typer.Context,
    name: str,
    model_version: Annotated[int, typer.Option(help="The model version to serve.")],
    set_: SetOpt = None,
    description: str = "",
    json_: JsonOpt = False,
) -> None:
    """Serve a model version; its replicas start at once."""
    with client_from(ctx) as client:
        d = client.create_deployment(name, model_version, settings=parse_params(set_ or []),
                                     description=description)  # fmt: skip
    print_object(d if json_ else _row(d), json_)


@app.command("list")
def list_(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Your organization's deployments and their status."""
    with client_from(ctx) as client:
        rows = client.list_deployments()
    print_rows(rows if json_ else [_row(d) for d in rows], COLUMNS, json_, "deployments")


@app.command("show")
def show(ctx: typer.Context, deployment: str, json_: JsonOpt = False) -> None:
    """A deployment with its revisions (rollout history) and the last hour's figures."""
    with client_from(ctx) as client:
        d = client.get_deployment(deployment)
        d["revisions"] = client.deployment_revisions(deployment)
        d["figures"] = client.deployment_figures(deployment)
    if json_:
        print_object(d, True)
        return
    figures = d.pop("figures")
    revisions = d.pop("revisions")
    print_object(_row(d), False)
    print_rows(revisions, ("number", "model_version", "created_at", "settings"), False,
               "revisions")  # fmt: skip
    print_object({k: figures[k] for k in ("requests", "latency_p50_ms", "latency_p95_ms",
                                          "per_label")}, False)  # fmt: skip


@app.command("update")
def update(
    ctx: typer.Context,
    deployment: str,
    model_version: Annotated[int | None, typer.Option(help="Roll out this model version.")] = None,
    set_: SetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Roll out another model version or change settings (a new revision)."""
    with client_from(ctx) as client:
        d = client.update_deployment(deployment, model_version_id=model_version,
                                     settings=parse_params(set_ or []) or None)  # fmt: skip
    print_object(d if json_ else _row(d), json_)


@app.command("stop")
def stop(ctx: typer.Context, deployment: str, json_: JsonOpt = False) -> None:
    """Stop its replicas (predict answers 409 until it is started)."""
    with client_from(ctx) as client:
        d = client.stop_deployment(deployment)
    print_object(d if json_ else _row(d), json_)


@app.command("start")
def start(ctx: typer.Context, deployment: str, json_: JsonOpt = False) -> None:
    """Serve a stopped or failed deployment again."""
    with client_from(ctx) as client:
        d = client.start_deployment(deployment)
    print_object(d if json_ else _row(d), json_)


@app.command("token")
def token(ctx: typer.Context, deployment: str, name: str = "", json_: JsonOpt = False) -> None:
    """A token that may call this deployment's predict and nothing else (shown once)."""
    with client_from(ctx) as client:
        print_object(client.create_deployment_token(deployment, name), json_)


@app.command("predict")
def predict(
    ctx: typer.Context,
    deployment: str,
    image: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    json_: JsonOpt = False,
) -> None:
    """Boxes for one image."""
    with client_from(ctx) as client:
        answer = client.predict(deployment, image)
    if json_:
        print_object(answer, True)
        return
    rows = [{"label": s["label"], "score": round(s["score"], 3),
             "bbox": [round(v, 1) for v in s["bbox"]]} for s in answer["shapes"]]  # fmt: skip
    print_rows(rows, ("label", "score", "bbox"), False, f"prediction {answer['id']}")


@app.command("predictions")
def predictions(
    ctx: typer.Context,
    deployment: str,
    since: Annotated[str | None, typer.Option(help="ISO time, with its zone.")] = None,
    until: Annotated[str | None, typer.Option(help="ISO time, with its zone.")] = None,
    label: str | None = None,
    min_score: float | None = None,
    limit: int = 20,
    json_: JsonOpt = False,
) -> None:
    """The prediction log, newest first."""
    with client_from(ctx) as client:
        page = client.list_predictions(deployment, since=since, until=until, label=label,
                                       min_score=min_score, limit=limit)  # fmt: skip
    rows = [{**p, "boxes": len(p["shapes"]), "total_ms": round(p["latency_ms"]["total"], 1)}
            for p in page["items"]]  # fmt: skip
    print_rows(page["items"] if json_ else rows,
               ("id", "created_at", "model_version_id", "boxes", "total_ms", "review_status"),
               json_, "predictions")  # fmt: skip
