"""`darkroom admin`: operations on this darkroom's database and blob store, run where the
server runs (they read the same settings: `DARKROOM_HOME`, database and storage URLs)."""

from __future__ import annotations

from typing import Annotated

import typer

from darkroom.cli.output import JsonOpt, console, print_json

app = typer.Typer(no_args_is_help=True)


@app.command("gc")
def gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List, delete nothing.")] = False,
    grace_s: Annotated[
        float | None,
        typer.Option(help="Spare blobs newer than this (env DARKROOM_BLOB_GC_GRACE_S)"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete blobs nothing references, and stray files of refused or interrupted uploads."""
    from darkroom.config import Settings
    from darkroom.db.engine import make_engine, make_session_factory, session_scope
    from darkroom.domain.blobs import collect_garbage
    from darkroom.storage import BlobStore

    settings = Settings()
    engine = make_engine(settings.resolved_database_url)
    store = BlobStore(settings.resolved_storage_url, **settings.storage_options)
    grace = settings.blob_gc_grace_s if grace_s is None else grace_s
    with session_scope(make_session_factory(engine)) as session:
        found = collect_garbage(session, store, dry_run=dry_run, grace_s=grace)
    engine.dispose()
    if as_json:
        print_json({"unreferenced": found.rows, "strays": found.strays, "dry_run": dry_run})
        return
    verb = "would delete" if dry_run else "deleted"
    console.print(f"{verb} {len(found.rows)} unreferenced blobs and {len(found.strays)} stray "
                  f"files (older than {grace:g} s)")  # fmt: skip
