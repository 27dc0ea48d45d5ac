"""`darkroom workers`: the workers claiming runs, with their slots and GPUs."""

from __future__ import annotations

import typer

from darkroom.cli.context import client_from
from darkroom.cli.output import JsonOpt, print_rows


def workers(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Workers seen within two run leases: executor, run slots, GPUs and free GPUs."""
    with client_from(ctx) as client:
        rows = client.list_workers()
    columns = ("id", "hostname", "executor", "slots", "gpus", "gpus_free", "seen_at")
    print_rows(rows, columns, json_, "workers")
