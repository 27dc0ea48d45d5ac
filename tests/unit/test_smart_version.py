"""The pure parts of `smart-version`: near-duplicate groups, k-center, the stratified split."""

from __future__ import annotations

import random

import numpy as np

from darkroom.processings.smart_version import (
    Item,
    k_center,
    missing_from_splits,
    near_groups,
    stratified_split,
)


def test_near_groups_join_hashes_within_the_distance_transitively():
    base = 0b1011_0000
    hashes = np.array([base, base ^ 0b1, base ^ 0b11, (1 << 63) | 0xFFFF, 0], dtype=np.uint64)
    groups = sorted(sorted(g) for g in near_groups(hashes, 1))
    assert groups == [[0, 1, 2], [3], [4]]  # 0-1 and 1-2 are 1 bit apart, 0-2 two
    assert sorted(sorted(g) for g in near_groups(hashes, 0)) == [[0], [1], [2], [3], [4]]


def test_k_center_covers_the_clusters_first():
    rng = np.random.default_rng(0)
    clusters = [rng.normal(c, 0.01, (20, 2)) for c in ((0, 0), (10, 0), (0, 10))]
    points = np.concatenate(clusters)
    picked = k_center(points, 3, seed=1)
    assert sorted(p // 20 for p in picked) == [0, 1, 2]
    assert k_center(points, 3, seed=1) == picked
    assert k_center(points, 100, seed=1) == list(range(60))


def test_split_ratios_and_every_label_with_three_images_in_every_split():
    """On 300 random multi-label datasets: ratios held, and labels on 3+ images in every split
    but for a few (each reported by `missing_from_splits`, which the run logs)."""
    rng = random.Random(3)
    labels = [f"l{i}" for i in range(12)]
    cases = unmet = 0
    for trial in range(300):
        items = [Item(i, f"{i}.jpg", str(i), 1, set(), set(rng.sample(labels, rng.randint(0, 3))))
                 for i in range(rng.randint(20, 80))]  # fmt: skip
        placed = stratified_split(items, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=trial)
        assert set(placed) == {i.id for i in items}
        reported = missing_from_splits(items, placed)
        for label in labels:
            mine = [placed[i.id] for i in items if label in i.labels]
            if len(mine) >= 3:
                cases += 1
                missing = {"train", "val", "test"} - set(mine)
                unmet += bool(missing)
                assert sorted(missing) == sorted(reported.get(label, [])), (trial, label)
        train = sum(1 for s in placed.values() if s == "train")
        assert abs(train - 0.7 * len(items)) <= 0.15 * len(items) + 2
    assert unmet <= cases * 0.005, (unmet, cases)
