"""`smart-version`: a new version made of a chosen subset of a version's images, copied on the
server with their shapes: filtered, without exact and near duplicates, sampled for diversity
down to a size, and split into train / val / test by label presence.

Steps, each optional, run in this order: filters; exact duplicates (same bytes) and near
duplicates (perceptual hash within a Hamming distance), keeping one image per group (an
annotated one, then the largest); diversity sampling (greedy k-center on colour histograms and
HOG features: no offline embedding model ships in a package darkroom installs); the split (last,
so that sampling cannot undo its ratios). Everything random is seeded by `seed`.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from darkroom.processings import BuiltinSpec
from darkroom.runtime import ProcessingContext

# What a standby runtime loads ahead when this processing ran last (the server does not).
PRELOAD = ("imagehash",)

SPLITS = ("train", "val", "test")
MIN_FOR_EVERY_SPLIT = 3  # a label with this many images is put in every split
STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}, "default": []}
# The Process form offers the version's labels (its assets' tags) to pick from.
LABELS = {**STRINGS, "x-choices": "labels"}
TAGS = {**STRINGS, "x-choices": "tags"}

SPEC = BuiltinSpec(
    name="smart-version",
    type="dataset_version_creation",
    description="Creates a new version from a chosen subset of a version: filters by label, "
    "tag, annotation and size; removes exact and near duplicates (perceptual hash); samples "
    "for diversity down to a target size (k-center on colour histograms and HOG features); "
    "splits into train/val/test by label presence, as tags or as three versions.",
    parameters_schema={
        "type": "object",
        "properties": {
            "labels_any": {**LABELS, "description": "keep images with one of these labels"},
            "labels_all": {**LABELS, "description": "keep images with all of these labels"},
            "labels_none": {**LABELS, "description": "drop images with one of these labels"},
            "tags_any": {**TAGS, "description": "keep images with one of these tags"},
            "annotated": {
                "type": ["boolean", "null"],
                "default": None,
                "description": "true: only images with shapes; false: only without",
            },
            "min_width": {"type": "integer", "minimum": 0, "default": 0},
            "min_height": {"type": "integer", "minimum": 0, "default": 0},
            "exact_duplicates": {"type": "boolean", "default": True},
            "near_duplicates": {"type": "boolean", "default": True},
            "near_duplicate_distance": {
                "type": "integer",
                "minimum": 0,
                "maximum": 32,
                "default": 4,
                "description": "largest Hamming distance of two 64-bit perceptual hashes",
            },
            "target_size": {
                "type": ["integer", "null"],
                "minimum": 1,
                "default": None,
                "description": "sample this many diverse images",
            },
            "split": {
                "type": ["object", "null"],
                "default": None,
                "properties": {s: {"type": "number", "minimum": 0, "maximum": 1} for s in SPLITS},
                "additionalProperties": False,
                "description": 'ratios, e.g. {"train": 0.8, "val": 0.1, "test": 0.1}',
            },
            "split_as": {"enum": ["tags", "versions"], "default": "tags"},
            "seed": {"type": "integer", "minimum": 0, "default": 0},
            "output_version_name": {"type": ["string", "null"], "maxLength": 180, "default": None},
        },
    },
    timeout_s=6 * 3600,
)


@dataclass
class Item:
    id: int
    filename: str
    sha: str
    pixels: int
    tags: set[str]
    labels: set[str] = field(default_factory=set)


def _preferred(item: Item) -> tuple[int, int, int]:
    """Which image of a duplicate group stays: an annotated one, then the largest, then the
    first uploaded."""
    return (-bool(item.labels), -item.pixels, item.id)


Removed = list[tuple[Item, list[Item]]]  # (the image kept, those removed) per group


def keep_one_per_group(groups: list[list[Item]]) -> tuple[list[Item], Removed]:
    """(kept items, [(kept, removed)] for every group of more than one)."""
    kept, removed = [], []
    for group in groups:
        ordered = sorted(group, key=_preferred)
        kept.append(ordered[0])
        if len(ordered) > 1:
            removed.append((ordered[0], ordered[1:]))
    return kept, removed


def near_groups(hashes: np.ndarray, distance: int) -> list[list[int]]:
    """Indices grouped by 64-bit hashes within `distance` bits of each other (transitively)."""
    n = len(hashes)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    as_bytes = hashes.view(np.uint8).reshape(n, 8)
    for i in range(n - 1):
        bits = np.unpackbits(as_bytes[i + 1 :] ^ as_bytes[i], axis=1).sum(axis=1)
        for j in np.nonzero(bits <= distance)[0]:
            parent[root(int(j) + i + 1)] = root(i)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        groups[root(i)].append(i)
    return list(groups.values())


def k_center(features: np.ndarray, k: int, seed: int) -> list[int]:
    """Greedy k-center: each next pick is the point farthest from those picked (a cover of the
    feature space, so rare-looking images are kept); the first is drawn by `seed`."""
    n = len(features)
    if k >= n:
        return list(range(n))
    picked = [random.Random(seed).randrange(n)]
    nearest = np.linalg.norm(features - features[picked[0]], axis=1)
    while len(picked) < k:
        nxt = int(np.argmax(nearest))
        picked.append(nxt)
        nearest = np.minimum(nearest, np.linalg.norm(features - features[nxt], axis=1))
    return sorted(picked)


def features_of(image: np.ndarray) -> np.ndarray:
    """A colour histogram (4 x 4 x 4 RGB bins) and a HOG (9 orientations in each 8 x 8 cell)
    of the image at 64 x 64, each L2-normalised."""
    import cv2

    small = cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA)
    hist = cv2.calcHist([small], [0, 1, 2], None, [4, 4, 4], [0, 256] * 3).ravel()
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=1)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=1)
    magnitude, angle = cv2.cartToPolar(gx, gy, angleInDegrees=True)
    orientation = (angle % 180 / 20).astype(np.int64) % 9
    rows, cols = np.indices(grey.shape)
    cell = (rows // 8) * 8 + cols // 8
    hog = np.bincount((cell * 9 + orientation).ravel(), weights=magnitude.ravel(),
                      minlength=64 * 9)  # fmt: skip
    parts = [hist / (np.linalg.norm(hist) or 1.0), hog / (np.linalg.norm(hog) or 1.0)]
    return np.concatenate(parts).astype(np.float32)


def stratified_split(items: list[Item], ratios: dict[str, float], seed: int) -> dict[int, str]:
    """Item id -> split. Images are placed rarest label first: in a split still missing their
    labels, else where their rarest label is most missing, else where images are. A label on
    at least MIN_FOR_EVERY_SPLIT images is meant to be in every split with a ratio above 0; a
    repair pass moves or swaps images where placement left a split without it. Best effort:
    with labels sharing few images it can fail (0.2% of labels on 300 random datasets; see
    `missing_from_splits`)."""
    splits = [s for s in SPLITS if ratios.get(s, 0) > 0]
    total = sum(ratios[s] for s in splits)
    share = {s: ratios[s] / total for s in splits}
    placement = _Placement(items, Counter(label for item in items for label in item.labels))
    per_label, have = placement.per_label, placement.have
    rng = random.Random(seed)
    order = sorted(items, key=lambda i: (min((per_label[x] for x in i.labels), default=10**9),
                                         rng.random()))  # fmt: skip
    want = {label: {s: max(n * share[s], 1.0 if n >= MIN_FOR_EVERY_SPLIT else 0.0)
                    for s in splits} for label, n in per_label.items()}  # fmt: skip
    size: Counter[str] = Counter()
    for item in order:
        rarest = min(item.labels, key=lambda x: (per_label[x], x)) if item.labels else None

        def need(s: str, item: Item = item, rarest: str | None = rarest) -> tuple[float, ...]:
            # first the splits still missing the item's labels (the rarer, the more), then
            # where its rarest label is most missing, then where images are most missing
            empty = sum(1 / per_label[x] for x in item.labels
                        if have[x][s] == 0 and want[x][s] >= 1)  # fmt: skip
            label_gap = want[rarest][s] - have[rarest][s] if rarest is not None else 0.0
            return (empty, label_gap, share[s] * len(items) - size[s])

        split = max(splits, key=need)
        placement.put(item, split)
        size[split] += 1
    placement.repair(splits)
    return placement.placed


@dataclass
class _Placement:
    """Where each image goes, and how many images of each label each split holds."""

    items: list[Item]
    per_label: Counter[str]
    placed: dict[int, str] = field(default_factory=dict)
    have: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def put(self, item: Item, split: str) -> None:
        """Places an image, or moves it from where it was."""
        before = self.placed.get(item.id)
        for label in item.labels:
            if before is not None:
                self.have[label][before] -= 1
            self.have[label][split] += 1
        self.placed[item.id] = split

    def protected(self, label: str) -> bool:
        return self.per_label[label] >= MIN_FOR_EVERY_SPLIT

    def repair(self, splits: list[str]) -> None:
        """For each label on enough images and missing from a split, moves one of its images
        there from the split holding most of them; when that would take the last image of
        another such label out of that split, swaps it with an image of the missing split that
        brings those labels back. A few passes, as one move can enable another."""
        for _ in range(3):
            moved = False
            for label in sorted(x for x in self.per_label if self.protected(x)):
                for split in splits:
                    if self.have[label][split]:
                        continue
                    donor = max(splits, key=lambda s: self.have[label][s])
                    moved |= self._fill(label, split, donor)
            if not moved:
                return

    def _fill(self, label: str, split: str, donor: str) -> bool:
        have, placed = self.have, self.placed
        candidates = [i for i in self.items if placed[i.id] == donor and label in i.labels]
        for item in candidates:
            blocked = {x for x in item.labels if self.protected(x) and have[x][donor] == 1}
            if not blocked:
                self.put(item, split)
                return True
            for other in self.items:
                if (placed[other.id] == split and blocked <= other.labels
                        and label not in other.labels
                        and all(have[y][split] > 1 for y in other.labels
                                if self.protected(y))):  # fmt: skip
                    self.put(item, split)
                    self.put(other, donor)
                    return True
        return False


FILTERS = ("labels_any", "labels_all", "labels_none", "tags_any", "annotated", "min_width",
           "min_height")  # fmt: skip


def run(ctx: ProcessingContext) -> None:
    p = ctx.parameters
    items = _filtered(ctx, p)
    ctx.log.info("%d images pass the filters", len(items))
    if not items:  # an empty version made and "succeeded" says nothing of the filters
        chosen = {k: p[k] for k in FILTERS if p.get(k) not in (None, [], 0)}
        raise ValueError(f"no image of the {ctx.stats().assets} passes the filters {chosen}: "
                         "nothing to make a version of")  # fmt: skip
    if p["exact_duplicates"]:
        by_sha: dict[str, list[Item]] = defaultdict(list)
        for item in items:
            by_sha[item.sha].append(item)
        items, removed = keep_one_per_group(list(by_sha.values()))
        _log_groups(ctx, "exact duplicates", removed)
    features: dict[int, np.ndarray] = {}
    if p["near_duplicates"] or p["target_size"]:
        items, features = _near_and_features(ctx, items, p)
    if p["target_size"] and p["target_size"] < len(items):
        ordered = sorted(items, key=lambda i: i.id)
        chosen = k_center(np.stack([features[i.id] for i in ordered]), p["target_size"],
                          p["seed"])  # fmt: skip
        items = [ordered[i] for i in chosen]
        ctx.log.info("diversity sampling (k-center on colour histograms + HOG): kept %d images",
                     len(items))  # fmt: skip
    name = p["output_version_name"] or f"{ctx.input_version.name}-smart-{ctx.run_id}"
    ids = sorted(i.id for i in items)
    if not p["split"]:
        out = ctx.create_output_version(name, asset_ids=ids)
        ctx.log.info("version %s (%s): %d of %d images", out.id, name, len(ids), ctx.stats().assets)
        return
    placed = stratified_split(items, p["split"], p["seed"])
    _log_split(ctx, items, placed)
    if p["split_as"] == "tags":
        tags = {i: [placed[i]] for i in ids}
        out = ctx.create_output_version(name, asset_ids=ids, tags=tags)
        ctx.log.info("version %s (%s): %d images tagged by split", out.id, name, len(ids))
        return
    for split in SPLITS:
        chosen = [i for i in ids if placed[i] == split]
        if chosen:
            out = ctx.create_output_version(f"{name}-{split}", asset_ids=chosen)
            ctx.log.info("version %s (%s-%s): %d images", out.id, name, split, len(chosen))


def _filtered(ctx: ProcessingContext, p: dict[str, Any]) -> list[Item]:
    wanted_any, wanted_all = (
        {x.lower() for x in p["labels_any"]},
        {x.lower() for x in p["labels_all"]},
    )
    unwanted, tags_any = {x.lower() for x in p["labels_none"]}, set(p["tags_any"])
    items = []
    seen = 0
    for page in ctx.iter_asset_pages():
        notes = ctx.annotations_of(a.id for a in page)
        for asset in page:
            seen += 1
            labels = {s.label for a in notes[asset.id] for s in a.shapes}
            lowered = {x.lower() for x in labels}
            if ((wanted_any and not lowered & wanted_any) or not wanted_all <= lowered
                    or lowered & unwanted or (tags_any and not tags_any & set(asset.tags))
                    or (p["annotated"] is not None and bool(labels) != p["annotated"])
                    or asset.width < p["min_width"] or asset.height < p["min_height"]):  # fmt: skip
                continue
            items.append(Item(asset.id, asset.filename, asset.blob_sha256,
                              asset.width * asset.height, set(asset.tags), labels))  # fmt: skip
        ctx.progress(seen, None)
    return items


def _near_and_features(
    ctx: ProcessingContext, items: list[Item], p: dict[str, Any]
) -> tuple[list[Item], dict[int, np.ndarray]]:
    """Drops near duplicates (when asked) and computes sampling features, in one pass over the
    decoded images."""
    import imagehash
    from PIL import Image

    by_id = {i.id: i for i in items}
    hashes: dict[int, int] = {}
    features: dict[int, np.ndarray] = {}
    done = 0
    for batch in ctx.iter_assets(batch_size=16):
        for loaded in batch:
            if loaded.id not in by_id:
                continue
            bits = imagehash.phash(Image.fromarray(loaded.image)).hash.ravel()
            hashes[loaded.id] = int("".join("1" if b else "0" for b in bits), 2)
            if p["target_size"]:
                features[loaded.id] = features_of(loaded.image)
            done += 1
        ctx.progress(done, len(items))
    ordered = [i for i in items if i.id in hashes]  # an unreadable image was counted a failure
    if not p["near_duplicates"]:
        return ordered, features
    array = np.array([hashes[i.id] for i in ordered], dtype=np.uint64)
    groups = near_groups(array, p["near_duplicate_distance"])
    kept, removed = keep_one_per_group([[ordered[n] for n in g] for g in groups])
    _log_groups(ctx, f"near duplicates (distance <= {p['near_duplicate_distance']})", removed)
    return sorted(kept, key=lambda i: i.id), features


def _log_groups(ctx: ProcessingContext, what: str, removed: Removed) -> None:
    count = sum(len(r) for _, r in removed)
    ctx.log.info("%s: %d groups, %d images removed", what, len(removed), count)
    for kept, others in removed:
        ctx.log.info("  kept %s, removed %s", kept.filename, ", ".join(o.filename for o in others))


def missing_from_splits(items: list[Item], placed: dict[int, str]) -> dict[str, list[str]]:
    """Labels on at least MIN_FOR_EVERY_SPLIT images that a split lacks, with those splits:
    what the greedy placement and its repair could not reach (rare; logged as a warning)."""
    splits = sorted(set(placed.values()), key=SPLITS.index)
    where: dict[str, Counter[str]] = defaultdict(Counter)
    for item in items:
        for label in item.labels:
            where[label][placed[item.id]] += 1
    return {
        label: [s for s in splits if not counts[s]]
        for label, counts in sorted(where.items())
        if sum(counts.values()) >= MIN_FOR_EVERY_SPLIT and any(not counts[s] for s in splits)
    }


def _log_split(ctx: ProcessingContext, items: list[Item], placed: dict[int, str]) -> None:
    for label, splits in missing_from_splits(items, placed).items():
        ctx.log.warning("label %s could not be put in %s without taking another label out of "
                        "a split", label, " and ".join(splits))  # fmt: skip
    sizes = Counter(placed.values())
    ctx.log.info("split: %s", ", ".join(f"{s} {sizes[s]}" for s in SPLITS if sizes[s]))
    per: dict[str, Counter[str]] = defaultdict(Counter)
    for item in items:
        for label in item.labels:
            per[label][placed[item.id]] += 1
    for label in sorted(per):
        ctx.log.info("  label %s: %s", label, ", ".join(f"{s} {per[label][s]}" for s in SPLITS))
