"""PNG charts of an evaluation's figures, drawn with Pillow (no plotting library in the server).

The figures are stored as numbers (`EvaluationMetrics.pr_curves`, `.confusion`); these charts
are drawn from them on request, so a client that wants its own plot reads the numbers instead.
"""

from __future__ import annotations

import io
from typing import Any, Literal

from PIL import Image, ImageDraw, ImageFont

from darkroom.runtime.contract import Confusion, EvaluationMetrics

__all__ = ["Chart", "confusion_png", "evaluation_chart", "pr_curve_png"]

Chart = Literal["pr-curve", "confusion"]

# Colour-blind safe (Okabe-Ito), cycled when there are more labels.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
WIDTH, HEIGHT, MARGIN = 640, 480, 56


def evaluation_chart(metrics: dict[str, Any], chart: Chart) -> bytes | None:
    """`chart` of an evaluation's stored figures; None when it has none to draw."""
    figures = EvaluationMetrics.model_validate(metrics)
    if chart == "pr-curve":
        return pr_curve_png(figures.pr_curves)
    return None if figures.confusion is None else confusion_png(figures.confusion)


def pr_curve_png(curves: dict[str, list[float]]) -> bytes:
    """Precision against recall (0 to 1), one line per label, with a legend."""
    img = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=13)
    x0, y0, x1, y1 = MARGIN, 20, WIDTH - 180, HEIGHT - MARGIN
    draw.rectangle((x0, y0, x1, y1), outline="#444444")
    for i in range(11):
        t = i / 10
        x, y = x0 + t * (x1 - x0), y1 - t * (y1 - y0)
        draw.line((x, y1, x, y1 + 4), fill="#444444")
        draw.line((x0 - 4, y, x0, y), fill="#444444")
        if i % 2 == 0:
            draw.text((x - 8, y1 + 6), f"{t:.1f}", fill="black", font=font)
            draw.text((x0 - 30, y - 7), f"{t:.1f}", fill="black", font=font)
    draw.text(((x0 + x1) / 2 - 20, HEIGHT - 22), "recall", fill="black", font=font)
    draw.text((4, y0 - 16), "precision (IoU 0.50)", fill="black", font=font)
    for k, (label, precision) in enumerate(curves.items()):
        colour = PALETTE[k % len(PALETTE)]
        steps = max(len(precision) - 1, 1)
        points = [(x0 + i / steps * (x1 - x0), y1 - p * (y1 - y0)) for i, p in enumerate(precision)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        ly = y0 + 8 + k * 18
        draw.line((x1 + 12, ly + 7, x1 + 32, ly + 7), fill=colour, width=3)
        draw.text((x1 + 38, ly), label[:20], fill="black", font=font)
    return _png(img)


def confusion_png(confusion: Confusion) -> bytes:
    """The confusion matrix as a grid: rows the truth, columns the detection, darker = more;
    each row shaded by its own total so that rare labels read as well as common ones."""
    rows = [*confusion.labels, "background"]
    cols = [*confusion.labels, "missed"]
    font = ImageFont.load_default(size=12)
    cell = max(28, min(64, 420 // max(len(cols), 1)))
    left, top = 130, 50 if len(cols) <= 6 else 110
    img = Image.new("RGB", (left + cell * len(cols) + 20, top + cell * len(rows) + 30), "white")
    draw = ImageDraw.Draw(img)
    draw.text((left, 8), f"detected as (score >= {confusion.confidence:g})", fill="black",
              font=font)  # fmt: skip
    draw.text((8, top - 18), "truth", fill="black", font=font)
    chars = max(3, cell // 7)
    for j, name in enumerate(cols):
        x = left + j * cell + 2
        if len(cols) > 6:  # narrow columns: the name written downwards
            draw.multiline_text((x + cell // 2 - 6, 28), "\n".join(name[:6]), fill="black",
                                font=font, spacing=0)  # fmt: skip
        else:
            draw.text((x, top - 18), name[:chars], fill="black", font=font)
    for i, name in enumerate(rows):
        y = top + i * cell
        draw.text((8, y + cell // 2 - 7), name[:16], fill="black", font=font)
        total = sum(confusion.matrix[i]) or 1
        for j, count in enumerate(confusion.matrix[i]):
            x = left + j * cell
            shade = int(255 - 200 * count / total)
            fill = (
                (shade, shade, 255) if i < len(confusion.labels) and i == j else (255, shade, shade)
            )
            draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=fill, outline="#cccccc")
            if count:
                text = str(count)
                draw.text((x + cell // 2 - 4 * len(text), y + cell // 2 - 7), text, fill="black",
                          font=font)  # fmt: skip
    return _png(img)


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()
