"""`deployment-metrics`: what a deployment answered in a window, and how far it drifted.

Written only against the runtime SDK, as a user's own metric would be: it reads the window's
predictions with `ctx.iter_predictions()` and records with `ctx.record_metrics()`. Latency
percentiles (total, queue, inference), requests per model version, boxes per label, the score
histogram; and, when the job is given a reference dataset version, the population stability
index (PSI) of the label distribution against the reference's shapes, and of the score
distribution against the reference's scored (pre-annotated) shapes. PSI under 0.1 is read as
stable, 0.1 to 0.25 as a shift worth a look, above 0.25 as drift.
"""

from __future__ import annotations

from collections import Counter

from darkroom.figures import histogram, percentile, psi
from darkroom.processings import BuiltinSpec
from darkroom.runtime import ProcessingContext

SPEC = BuiltinSpec(
    name="deployment-metrics",
    type="custom",
    target="deployment",
    description="Latency percentiles, requests per model version, boxes per label, score "
    "histogram and, against a reference dataset version, label and score drift (PSI) of a "
    "deployment's predictions in a window.",
    parameters_schema={
        "type": "object",
        "properties": {
            "score_bins": {"type": "integer", "minimum": 2, "maximum": 100, "default": 10},
            "min_score": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "default": 0,
                "description": "boxes scored below this are left out of the label counts",
            },
        },
    },
    timeout_s=3600,
)

DRIFT_PSI = 0.25


def run(ctx: ProcessingContext) -> None:
    deployment, window = ctx.deployment, ctx.window
    if deployment is None or window is None:
        raise RuntimeError("deployment-metrics runs on a deployment")
    bins, min_score = ctx.parameters["score_bins"], ctx.parameters["min_score"]
    start = window.start.isoformat() if window.start else "the beginning"
    ctx.log.info("deployment %s (revision %d): predictions from %s to %s",
                 deployment.name, deployment.revision, start, window.end.isoformat())  # fmt: skip
    total, queue, inference, scores = [], [], [], []
    labels: Counter[str] = Counter()
    by_model: Counter[str] = Counter()
    for prediction in ctx.iter_predictions():
        total.append(prediction.total_ms)
        queue.append(prediction.queue_ms)
        inference.append(prediction.inference_ms)
        by_model[str(prediction.model_version_id)] += 1
        for shape in prediction.shapes:
            scores.append(shape["score"])
            if shape["score"] >= min_score:
                labels[shape["label"]] += 1
        if len(total) % 1000 == 0:
            ctx.progress(len(total))
    ctx.progress(len(total), len(total), force=True)
    if not total:
        ctx.log.warning("no prediction in this window: nothing to measure")
    figures: dict[str, object] = {
        "requests": len(total),
        "latency_p50_ms": percentile(total, 50), "latency_p95_ms": percentile(total, 95),
        "latency_p99_ms": percentile(total, 99), "queue_p50_ms": percentile(queue, 50),
        "inference_p50_ms": percentile(inference, 50),
        "boxes_per_image": sum(labels.values()) / len(total) if total else None,
        "boxes_per_label": dict(labels.most_common()),
        "requests_per_model_version": dict(by_model),
        "score_histogram": {"bins": bins, "counts": histogram(scores, bins)},
    }  # fmt: skip
    if ctx.input_version is not None:
        figures.update(_drift(ctx, labels, histogram(scores, bins), bins, min_score))
    recorded = {k: v for k, v in figures.items() if v is not None}
    ctx.record_metrics(recorded)
    for key in ("requests", "latency_p50_ms", "latency_p95_ms", "label_psi", "score_psi"):
        if key in recorded:
            ctx.log.info("%s: %s", key, _shown(recorded[key]))
    for label, n in labels.most_common():
        ctx.log.info("boxes %s: %d", label, n)


def _drift(
    ctx: ProcessingContext, labels: Counter[str], scores: list[int], bins: int, min_score: float
) -> dict[str, object]:
    """PSI of labels and scores against the reference version's shapes."""
    assert ctx.input_version is not None
    ref_labels: Counter[str] = Counter()
    ref_scores: list[float] = []
    for page in ctx.iter_asset_pages(page_size=500):
        for stored in ctx.annotations_of([a.id for a in page]).values():
            for annotation in stored:
                for shape in annotation.shapes:
                    if shape.score is None or shape.score >= min_score:
                        ref_labels[shape.label] += 1
                    if shape.score is not None:
                        ref_scores.append(shape.score)
    ctx.log.info("reference version %s: %d shapes, %d with scores", ctx.input_version.name,
                 sum(ref_labels.values()), len(ref_scores))  # fmt: skip
    out: dict[str, object] = {"reference_boxes_per_label": dict(ref_labels.most_common())}
    names = sorted(set(labels) | set(ref_labels))
    out["label_psi"] = psi([labels[k] for k in names], [ref_labels[k] for k in names])
    out["score_psi"] = psi(scores, histogram(ref_scores, bins)) if ref_scores else None
    drifted = [k for k in ("label_psi", "score_psi") if (out[k] or 0) > DRIFT_PSI]
    if drifted:
        ctx.log.warning("drift against the reference: %s above %.2f", ", ".join(drifted),
                        DRIFT_PSI)  # fmt: skip
    return out


def _shown(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
