"""`dataset-stats`: counts assets, sizes and shapes per label of a version, and logs them.

The smallest useful processing: a smoke test for a darkroom install and for the engine.
"""

from __future__ import annotations

import time
from collections import Counter

from darkroom.processings import BuiltinSpec
from darkroom.runtime import ProcessingContext

SPEC = BuiltinSpec(
    name="dataset-stats",
    type="custom",
    description="Counts the assets of a version, their sizes and the shapes per label, and logs "
    "a summary. A quick way to check that processings run.",
    parameters_schema={
        "type": "object",
        "properties": {
            "page_size": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 200},
            "delay_s": {
                "type": "number",
                "minimum": 0,
                "maximum": 60,
                "default": 0,
                "description": "pause after each page (to watch progress)",
            },
        },
    },
    timeout_s=3600,
)


def run(ctx: ProcessingContext) -> None:
    version = ctx.input_version
    stats = ctx.stats()
    total = stats.assets
    ctx.log.info("version %s (%s): %d assets", version.id, version.name, total)
    sizes: Counter[tuple[int, int]] = Counter()
    done = 0
    ctx.progress(0, total)
    for page in ctx.iter_asset_pages(page_size=ctx.parameters["page_size"]):
        for asset in page:
            sizes[(asset.width, asset.height)] += 1
        done += len(page)
        ctx.progress(done, total)
        ctx.log.info("scanned %d/%d assets", done, total)
        if ctx.parameters["delay_s"]:
            time.sleep(ctx.parameters["delay_s"])
    for (w, h), n in sizes.most_common(5):
        ctx.log.info("size %dx%d: %d assets", w, h, n)
    for label in stats.labels:
        ctx.log.info("label %s: %d shapes", label.name, label.shapes)
    ctx.log.info(
        "done: %d assets, %d annotated, %d shapes", total, stats.annotated_assets, stats.shapes
    )
