"""`deployment-evaluation`: how good the boxes a deployment served were, against what people
made of them.

Reviewed predictions are sent into a dataset version (the review page's Send to version): each
asset's metadata names its prediction, and the boxes people keep on it — accepted as served, or
fixed in the asset editor — are its ground truth. This run reads those assets of its job's
reference version, pairs each with the prediction it came from in the job's window, and measures
the served boxes against the people's with COCO's metrics (faster-coco-eval, as
`model-evaluation`): mAP@[.5:.95], mAP@.5, recall, AP@.5 per label. Rejected predictions are
counted beside it. Only the runtime SDK is used, as a user's own metric would.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from darkroom.processings import BuiltinSpec
from darkroom.processings.coco_metrics import GROUND_TRUTH_KINDS, box_of, evaluate
from darkroom.runtime import ProcessingContext

PRELOAD = ("faster_coco_eval",)

SPEC = BuiltinSpec(
    name="deployment-evaluation",
    type="model_evaluation",
    target="deployment",
    description="mAP of a deployment's served boxes against the reviewed ones (predictions "
    "sent to a dataset version, accepted or fixed there); give that version as the job's "
    "reference version.",
    parameters_schema={"type": "object", "properties": {}},
    timeout_s=3600,
)


def run(ctx: ProcessingContext) -> None:
    if ctx.deployment is None:
        raise RuntimeError("deployment-evaluation runs on a deployment")
    if ctx.input_version is None:
        raise RuntimeError(
            "give the dataset version the reviewed predictions were sent to as the job's "
            "reference version (darkroom job launch ... --version ID)"
        )
    served: dict[int, Any] = {}
    reviews: Counter[str] = Counter()
    for prediction in ctx.iter_predictions():
        reviews[prediction.review_status] += 1
        served[prediction.id] = prediction
    linked: dict[int, Any] = {}  # asset id -> its prediction
    for page in ctx.iter_asset_pages(page_size=500):
        for asset in page:
            prediction = served.get(asset.metadata.get("prediction_id"))
            if prediction is not None and asset.metadata.get("deployment_id") == ctx.deployment.id:
                linked[asset.id] = (asset, prediction)
    ctx.log.info("%d predictions in the window (%s); %d of them reviewed into version %s",
                 len(served), ", ".join(f"{k} {v}" for k, v in sorted(reviews.items())),
                 len(linked), ctx.input_version.name)  # fmt: skip
    images: list[dict[str, Any]] = []
    truths: list[dict[str, Any]] = []
    found: list[dict[str, Any]] = []
    category: dict[str, int] = {}
    annotations = ctx.annotations_of(list(linked)) if linked else {}
    for asset_id, (asset, prediction) in linked.items():
        image_id = len(images) + 1
        images.append({"id": image_id, "width": asset.width, "height": asset.height})
        for annotation in annotations.get(asset_id, []):
            if annotation.author_kind != "user":
                continue
            for shape in annotation.shapes:
                box = box_of(shape)
                if shape.kind in GROUND_TRUTH_KINDS and box:
                    cid = category.setdefault(shape.label, len(category) + 1)
                    truths.append({"id": len(truths) + 1, "image_id": image_id,
                                   "category_id": cid, "bbox": box, "area": box[2] * box[3],
                                   "iscrowd": 0})  # fmt: skip
        for shape in prediction.shapes:
            cid = category.setdefault(shape["label"], len(category) + 1)
            found.append({"image_id": image_id, "category_id": cid,
                          "bbox": [float(v) for v in shape["bbox"]],
                          "score": float(shape["score"])})  # fmt: skip
        ctx.progress(image_id, len(linked))
    labels = sorted(category, key=category.get)
    figures: dict[str, Any] = {
        "reviewed_images": len(images), "ground_truth": len(truths), "served_boxes": len(found),
        "reviews": dict(reviews),
        "rejected_share": reviews["rejected"] / len(served) if served else 0.0,
    }  # fmt: skip
    if images:
        metrics = evaluate(images, truths, found, labels)
        figures.update({
            "map": metrics.map, "map50": metrics.map50, "recall": metrics.recall,
            "ap50_per_label": {m.label: m.ap50 for m in metrics.labels if m.ap50 is not None},
        })  # fmt: skip
        ctx.log.info("served boxes against the reviewed ones: mAP@[.5:.95] %.4f, mAP@.5 %.4f, "
                     "recall %.4f", metrics.map, metrics.map50, metrics.recall)  # fmt: skip
    else:
        ctx.log.warning("no reviewed prediction of this window in version %s: nothing to "
                        "measure", ctx.input_version.name)  # fmt: skip
    ctx.record_metrics(figures)
