"""`darkroom import coco|yolo|voc …` and `darkroom export coco|yolo|voc …`"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from darkroom.cli.context import client_from
from darkroom.cli.output import JsonOpt, console, err_console, print_object


class OnExisting(enum.StrEnum):
    replace = "replace"
    add = "add"
    skip = "skip"


import_app = typer.Typer(no_args_is_help=True)
export_app = typer.Typer(no_args_is_help=True)

FORMATS = {
    "coco": "COCO: a zip with a .json annotation file and the images, or the .json alone "
    "(matched to the version's assets by file name)",
    "yolo": "YOLO: a zip with data.yaml or classes.txt, images/ and labels/",
    "voc": "Pascal VOC: a zip with Annotations/*.xml and JPEGImages/",
}


def _import(fmt: str):  # type: ignore[no-untyped-def]
    def command(
        ctx: typer.Context,
        version_id: int,
        path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
        on_existing: Annotated[
            OnExisting,
            typer.Option(
                help="images the version already has: replace your shapes on them "
                "(a re-import changes nothing), add beside them, or skip "
                "annotated ones"
            ),
        ] = OnExisting.replace,
        json_: JsonOpt = False,
    ) -> None:
        with (
            client_from(ctx) as client,
            err_console.status(f"importing {path.name}…", spinner="dots"),
        ):
            report = client.import_file(version_id, fmt, path, on_existing.value)
        if json_:
            print_object(report, True)
            return
        console.print(
            f"images added {report['images_added']}, matched {report['images_matched']}, "
            f"shapes {report['shapes_added']} (replaced {report['shapes_replaced']}), "
            f"new labels {report['labels_created']}, "
            f"skipped {report['skipped_count']}"
        )
        for s in report["skipped"][:20]:
            console.print(f"  [yellow]skipped[/yellow] {s['item']}: {s['reason']}")
        if report["skipped_count"] > 20:
            console.print(f"  … and {report['skipped_count'] - 20} more (use --json)")

    command.__doc__ = f"Import {FORMATS[fmt]}."
    return command


def _export(fmt: str):  # type: ignore[no-untyped-def]
    def command(
        ctx: typer.Context,
        version_id: int,
        output: Annotated[
            Path | None,
            typer.Option("--output", "-o", help="Zip to write (default version-<id>-<format>.zip)"),
        ] = None,
        json_: JsonOpt = False,
    ) -> None:
        target = output or Path(f"version-{version_id}-{fmt}.zip")
        with (
            client_from(ctx) as client,
            err_console.status(f"exporting to {target}…", spinner="dots"),
        ):
            client.export_to(version_id, fmt, target)
        info = {
            "version_id": version_id,
            "format": fmt,
            "path": str(target),
            "bytes": target.stat().st_size,
        }
        if json_:
            print_object(info, True)
        else:
            console.print(f"wrote {target} ({info['bytes']} bytes)")

    command.__doc__ = f"Export as {FORMATS[fmt].split(':')[0]} zip."
    return command


for _fmt in FORMATS:
    import_app.command(_fmt)(_import(_fmt))
    export_app.command(_fmt)(_export(_fmt))
