"""The runtime SDK: what processing code imports.

    from darkroom.runtime import ProcessingContext

    def run(ctx: ProcessingContext) -> None:
        total = ctx.stats().assets
        done = 0
        for batch in ctx.iter_assets(batch_size=ctx.parameters["batch_size"]):
            ...
            ctx.add_annotations(rows)
            done += len(batch)
            ctx.progress(done, total)

The runtime talks to darkroom only over HTTP, with the run-scoped token its executor gives it.
What travels between them is typed once, in `darkroom.runtime.contract`; the types a
processing meets are exported here. `darkroom.runtime.testing` runs `run(ctx)` without a server.
"""

from darkroom.runtime.context import LoadedAsset, ProcessingContext, TooManyFailures
from darkroom.runtime.contract import (
    AnnotationItem,
    Asset,
    Confusion,
    Deployment,
    Evaluation,
    EvaluationMetrics,
    Label,
    LabelMetrics,
    Limits,
    ModelVersion,
    Prediction,
    ProcessingInfo,
    Shape,
    StoredAnnotation,
    Version,
    VersionStats,
    Window,
)

__all__ = [
    "AnnotationItem",
    "Asset",
    "Confusion",
    "Deployment",
    "Evaluation",
    "EvaluationMetrics",
    "Label",
    "LabelMetrics",
    "Limits",
    "LoadedAsset",
    "ModelVersion",
    "Prediction",
    "ProcessingContext",
    "ProcessingInfo",
    "Shape",
    "StoredAnnotation",
    "TooManyFailures",
    "Version",
    "VersionStats",
    "Window",
]
