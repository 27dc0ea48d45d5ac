"""`darkroom asset …`"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from darkroom.cli.context import client_from
from darkroom.cli.output import JsonOpt, console, err_console, fail, print_object, print_rows
from darkroom.client import ApiError, Client

app = typer.Typer(no_args_is_help=True)

BATCH_FILES = 16
BATCH_BYTES = 32 * 1024 * 1024


def _images_in(path: Path) -> Iterator[tuple[str, Any]]:
    """(asset file name, bytes loader) for the images of a folder, a zip or a single file."""
    from darkroom.formats.records import IMAGE_EXTENSIONS  # (the server's side: lazily)

    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            if file.suffix.lower() in IMAGE_EXTENSIONS:
                yield file.relative_to(path).as_posix(), file.read_bytes
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                if not info.is_dir() and info.filename.lower().endswith(IMAGE_EXTENSIONS):
                    yield info.filename, (lambda i=info: zf.read(i))
    elif path.is_file():
        yield path.name, path.read_bytes
    else:
        fail(f"{path}: no such file or folder")


def _upload_batch(
    client: Client, version_id: int, batch: list[tuple[str, bytes]], result: dict[str, list[Any]]
) -> None:
    """Uploads a batch; when the server rejects it, retries file by file to name the culprits."""
    try:
        result["uploaded"].extend(client.upload_assets(version_id, batch))
        return
    except ApiError as exc:
        if len(batch) == 1:
            name = batch[0][0]
            bucket = "skipped" if exc.code == "already_exists" else "rejected"
            result[bucket].append({"filename": name, "code": exc.code, "message": exc.message})
            return
        if exc.status in (0, 401, 404):
            fail(exc)
    for item in batch:
        _upload_batch(client, version_id, [item], result)


@app.command("upload")
def upload(
    ctx: typer.Context,
    version_id: int,
    path: Annotated[Path, typer.Argument(help="An image, a folder of images, or a zip.")],
    json_: JsonOpt = False,
) -> None:
    """Upload images to a version; files already there are skipped, bad ones are listed."""
    items = list(_images_in(path))
    if not items:
        from darkroom.formats.records import IMAGE_EXTENSIONS

        fail(f"{path}: no images ({', '.join(IMAGE_EXTENSIONS)})")
    result: dict[str, list[Any]] = {"uploaded": [], "skipped": [], "rejected": []}
    progress = Progress(
        TextColumn("uploading"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=err_console, disable=json_,
    )  # fmt: skip
    with client_from(ctx) as client, progress:
        task = progress.add_task("upload", total=len(items))
        batch: list[tuple[str, bytes]] = []
        size = 0
        for n, (name, load) in enumerate(items, start=1):
            data = load()
            batch.append((name, data))
            size += len(data)
            if len(batch) >= BATCH_FILES or size >= BATCH_BYTES or n == len(items):
                _upload_batch(client, version_id, batch, result)
                progress.advance(task, len(batch))
                batch, size = [], 0
    if json_:
        print_object(result, True)
    else:
        console.print(
            f"uploaded {len(result['uploaded'])}, already there {len(result['skipped'])}, "
            f"rejected {len(result['rejected'])}"
        )
        for r in result["rejected"]:
            console.print(f"  [red]rejected[/red] {r['message']}")
    if result["rejected"]:
        raise typer.Exit(1)


@app.command("list")
def list_(
    ctx: typer.Context,
    version_id: int,
    label: Annotated[
        str | None, typer.Option(help="Only assets with this label (name or id).")
    ] = None,
    tag: Annotated[str | None, typer.Option(help="Only assets with this tag.")] = None,
    annotated: Annotated[
        bool | None, typer.Option("--annotated/--not-annotated", help="With or without shapes.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many (0: all).")] = 100,
    json_: JsonOpt = False,
) -> None:
    """List the assets of a version."""
    rows: list[dict[str, Any]] = []
    with client_from(ctx) as client:
        for asset in client.iter_assets(version_id, label=label, tag=tag, annotated=annotated):
            rows.append(asset)
            if limit and len(rows) >= limit:
                break
    print_rows(rows, ("id", "filename", "width", "height", "tags"), json_, "assets")
