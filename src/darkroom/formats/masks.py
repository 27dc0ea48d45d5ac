"""COCO run-length encoded masks, read without pycocotools: the run lengths of a mask, which
validation checks against the image's pixel count and exports sum up for the area."""

from __future__ import annotations

__all__ = ["rle_box", "rle_counts"]


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


def rle_box(runs: list[int], height: int) -> list[float] | None:
    """The [x, y, w, h] box of a mask's run lengths (column-major, as COCO's), like
    pycocotools' `toBbox`; None for an empty mask."""
    x0 = y0 = 1 << 62
    x1 = y1 = -1
    pos = 0
    for i, n in enumerate(runs):
        if i % 2 and n:
            start, end = pos, pos + n - 1
            c0, c1 = start // height, end // height
            x0, x1 = min(x0, c0), max(x1, c1)
            if c0 != c1:  # the run wraps into the next column: every row is covered
                y0, y1 = 0, height - 1
            else:
                y0, y1 = min(y0, start % height), max(y1, end % height)
        pos += n
    if x1 < 0:
        return None
    return [float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1)]
