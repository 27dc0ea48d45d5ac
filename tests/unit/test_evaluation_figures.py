"""The figures model-evaluation adds to COCOeval's: the confusion matrix and its charts."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from darkroom.charts import confusion_png, evaluation_chart, pr_curve_png
from darkroom.processings.coco_metrics import confusion, evaluate


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


def test_a_case_worked_by_hand_from_cocos_definition():
    """Two truths, three detections: 0.9 hits, 0.8 misses, 0.7 hits. Precision after each: 1,
    1/2, 2/3 at recall 1/2, 1/2, 1. COCO interpolates precision as the best at any recall at
    or above, sampled at 101 recalls (0, 0.01, ..., 1): 51 samples up to 0.50 get 1, the 50
    above get 2/3, so AP@.5 = (51 + 50 * 2/3) / 101 = 0.834983 (to 1e-6); at IoU >= 0.80 the
    second hit (IoU 0.75) misses, so AP drops for the thresholds above 0.75."""
    images = [{"id": 1, "width": 400, "height": 400}]
    truths = [_t(1, 1, 1, [0, 0, 100, 100]), _t(2, 1, 1, [200, 200, 100, 100])]
    found = [
        _d(1, 1, [0, 0, 100, 100], 0.9),  # IoU 1
        _d(1, 1, [100, 300, 50, 50], 0.8),  # nothing there
        _d(1, 1, [200, 200, 100, 75], 0.7),  # IoU 0.75
    ]
    m = evaluate(images, truths, found, ["cat"])
    assert m.map50 == pytest.approx((51 + 50 * 2 / 3) / 101, abs=1e-6)
    assert m.labels[0].ap50 == pytest.approx(0.834983, abs=1e-6)
    assert m.recall == pytest.approx((6 * 1.0 + 4 * 0.5) / 10)  # IoU .50-.75 both, .80-.95 one
    # mAP over IoU .50:.95: six thresholds (.50 to .75) as above, four where only the first
    # hit counts: precision 1 up to recall 0.5, nothing beyond: 51 / 101.
    assert m.map == pytest.approx((6 * (51 + 50 * 2 / 3) / 101 + 4 * 51 / 101) / 10, abs=1e-6)


def test_the_figures_are_pycocotools_own_to_1e6():
    """faster-coco-eval computes them; pycocotools, the reference, must agree on a mixed case
    (misses, mislabels, inventions, several images and labels)."""
    import contextlib

    import numpy as np
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(3)
    images, truths, found = [], [], []
    for image in range(1, 41):
        images.append({"id": image, "width": 640, "height": 480})
        for _ in range(rng.integers(1, 8)):
            w, h = rng.uniform(10, 150, 2)
            x, y, cat = rng.uniform(0, 480), rng.uniform(0, 320), int(rng.integers(1, 4))
            truths.append(_t(len(truths) + 1, image, cat, [x, y, w, h]))
            if rng.random() < 0.8:
                jx, jy = rng.normal(0, 6, 2)
                label = cat if rng.random() < 0.85 else int(rng.integers(1, 4))
                found.append(_d(image, label, [x + jx, y + jy, w, h], float(rng.random())))
        found.append(_d(image, int(rng.integers(1, 4)), [5, 5, 30, 30], float(rng.random())))
    ours = evaluate(images, truths, found, ["a", "b", "c"])
    truth = COCO()
    categories = [{"id": i, "name": n} for i, n in enumerate("abc", 1)]
    truth.dataset = {"images": images, "annotations": truths, "categories": categories}
    with contextlib.redirect_stdout(io.StringIO()):
        truth.createIndex()
        ref = COCOeval(truth, truth.loadRes([dict(f) for f in found]), "bbox")
        ref.evaluate()
        ref.accumulate()
        ref.summarize()
    assert ours.map == pytest.approx(ref.stats[0], abs=1e-6)
    assert ours.map50 == pytest.approx(ref.stats[1], abs=1e-6)
    assert ours.recall == pytest.approx(ref.stats[8], abs=1e-6)
    for k, label in enumerate(ours.labels):
        at50 = ref.eval["precision"][0, :, k, 0, -1]
        assert label.ap50 == pytest.approx(float(np.mean(at50[at50 > -1])), abs=1e-6)
