"""The runtime SDK: what processing code imports.

    from darkroom.runtime import ProcessingContext

    def run(ctx: ProcessingContext) -> None:
        for batch in ctx.iter_assets(batch_size=ctx.parameters["batch_size"]):
            ...
            ctx.add_annotations(rows)
            ctx.progress(done, total)

The runtime talks to darkroom only over HTTP, with the run-scoped token it finds in its
environment (`DARKROOM_URL`, `DARKROOM_RUN_TOKEN`, `DARKROOM_RUN_ID`).
"""

from darkroom.runtime.context import LoadedAsset, ProcessingContext, TooManyFailures

__all__ = ["LoadedAsset", "ProcessingContext", "TooManyFailures"]
