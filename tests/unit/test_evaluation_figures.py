"""The figures model-evaluation adds to COCOeval's: the confusion matrix and its charts."""

from __future__ import annotations

import io

from PIL import Image

from darkroom.charts import confusion_png, evaluation_chart, pr_curve_png
from darkroom.processings.model_evaluation import confusion, evaluate


def _t(i, image, cat, box):
    return {"id": i, "image_id": image, "category_id": cat, "bbox": box, "area": box[2] * box[3],
            "iscrowd": 0}  # fmt: skip


def _d(image, cat, box, score):
    return {"image_id": image, "category_id": cat, "bbox": box, "score": score}


def test_confusion_counts_hits_mislabels_misses_and_background():
    truths = [_t(1, 1, 1, [0, 0, 10, 10]), _t(2, 1, 2, [50, 50, 10, 10]),
              _t(3, 2, 2, [0, 0, 20, 20]), _t(4, 2, 1, [100, 100, 5, 5])]  # fmt: skip
    found = [
        _d(1, 1, [0, 0, 10, 10], 0.9),  # cat right
        _d(1, 1, [51, 51, 10, 10], 0.8),  # a dog seen as a cat (IoU 0.68)
        _d(1, 2, [0, 0, 10, 10], 0.7),  # the cat again, already taken: background
        _d(2, 2, [1, 1, 20, 20], 0.6),  # dog right
        _d(2, 1, [300, 300, 5, 5], 0.95),  # nothing there: background
        _d(2, 1, [100, 100, 5, 5], 0.1),  # the last cat, below the confidence: it is missed
    ]
    c = confusion(truths, found, ["cat", "dog"], confidence=0.25)
    #               cat dog missed
    assert c.matrix == [[1, 0, 1],  # cat truths
                        [1, 1, 0],  # dog truths
                        [1, 1, 0]]  # background  # fmt: skip


def test_evaluate_gives_curves_only_for_labels_with_truth():
    images = [{"id": 1, "width": 200, "height": 200}]
    truths = [_t(1, 1, 1, [0, 0, 10, 10])]
    found = [_d(1, 1, [0, 0, 10, 10], 0.9), _d(1, 2, [50, 50, 10, 10], 0.9)]
    m = evaluate(images, truths, found, ["cat", "dog"])
    assert list(m.pr_curves) == ["cat"]
    assert len(m.pr_curves["cat"]) == 101
    assert m.pr_curves["cat"][0] == 1.0
    assert m.labels[1].ap is None
    assert m.labels[1].predictions == 1


def test_charts_are_pngs_drawn_from_the_numbers():
    curves = {"cat": [1.0] * 50 + [0.5] * 51, "dog": [0.8] * 101}
    pr = Image.open(io.BytesIO(pr_curve_png(curves)))
    assert (pr.format, pr.size) == ("PNG", (640, 480))
    pixels = pr.convert("RGB")
    assert pixels.getpixel((100, 20 + int((1 - 0.8) * (480 - 56 - 20)))) != (255, 255, 255)
    c = confusion(
        [_t(1, 1, 1, [0, 0, 10, 10])], [_d(1, 1, [0, 0, 10, 10], 0.9)], ["cat"], confidence=0.25
    )
    grid = Image.open(io.BytesIO(confusion_png(c)))
    assert grid.format == "PNG"
    assert evaluation_chart({"map": 0, "map50": 0, "recall": 0, "images": 0, "ground_truth": 0,
                             "predictions": 0, "labels": []}, "confusion") is None  # fmt: skip
