"""Plain-number statistics shared by the server (live deployment figures) and processings
(`deployment-metrics`): no dependency, so a run imports it without the server's."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["histogram", "percentile", "psi"]

PSI_EPSILON = 1e-4  # the share given to an empty bin, so its log stays finite


def percentile(values: Sequence[float], q: float) -> float | None:
    """The `q`th percentile by linear interpolation (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def histogram(scores: Iterable[float], bins: int) -> list[int]:
    """Counts of scores in [0, 1] in `bins` equal bins (1.0 falls in the last)."""
    counts = [0] * bins
    for score in scores:
        counts[min(max(int(score * bins), 0), bins - 1)] += 1
    return counts


def psi(actual: Sequence[int], expected: Sequence[int]) -> float | None:
    """Population stability index of two distributions over the same bins; None when either
    is empty. Under 0.1 reads as stable, 0.1-0.25 as a shift, above 0.25 as drift."""
    total_a, total_e = sum(actual), sum(expected)
    if not total_a or not total_e:
        return None
    out = 0.0
    for x, y in zip(actual, expected, strict=True):
        pa, pe = max(x / total_a, PSI_EPSILON), max(y / total_e, PSI_EPSILON)
        out += (pa - pe) * math.log(pa / pe)
    return out
