"""COCO run-length encoded masks, read without pycocotools: the run lengths of a mask, which
validation checks against the image's pixel count and exports sum up for the area."""

from __future__ import annotations

__all__ = ["rle_counts"]


def rle_counts(counts: str) -> list[int]:
    """The run lengths of COCO's compressed RLE string (pycocotools' `rleFrString`); raises
    ValueError for a string that is not one."""
    runs: list[int] = []
    p = 0
    while p < len(counts):
        x, k, more = 0, 0, True
        while more:
            if p >= len(counts):
                raise ValueError("compressed RLE ends inside a number")
            c = ord(counts[p]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"compressed RLE has a character out of range: {counts[p]!r}")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        if x < 0:
            raise ValueError("compressed RLE has a negative run")
        runs.append(x)
    return runs
