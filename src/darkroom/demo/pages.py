"""Document pages rendered from public-domain texts: titles, sections, paragraphs, tables and
figures, the layout classes a DocLayNet model knows."""

from __future__ import annotations

import io
import random
import textwrap

from PIL import Image, ImageDraw, ImageFont

__all__ = ["PAGE_SIZE", "render_pages"]

PAGE_SIZE = (850, 1100)

# Opening lines of public-domain books (Darwin 1859, Melville 1851, Austen 1813, Thoreau 1854).
TEXTS = [
    ("On the Origin of Species", "Variation under Domestication",
     "When we look to the individuals of the same variety or sub-variety of our older cultivated "
     "plants and animals, one of the first points which strikes us, is, that they generally "
     "differ much more from each other, than do the individuals of any one species or variety in "
     "a state of nature. When we reflect on the vast diversity of the plants and animals which "
     "have been cultivated, and which have varied during all ages under the most different "
     "climates and treatment, I think we are driven to conclude that this great variability is "
     "simply due to our domestic productions having been raised under conditions of life not so "
     "uniform as, and somewhat different from, those to which the parent-species have been "
     "exposed under nature."),
    ("Moby-Dick", "Loomings",
     "Call me Ishmael. Some years ago, never mind how long precisely, having little or no money "
     "in my purse, and nothing particular to interest me on shore, I thought I would sail about a "
     "little and see the watery part of the world. It is a way I have of driving off the spleen "
     "and regulating the circulation. Whenever I find myself growing grim about the mouth; "
     "whenever it is a damp, drizzly November in my soul; then, I account it high time to get to "
     "sea as soon as I can."),
    ("Pride and Prejudice", "Chapter I",
     "It is a truth universally acknowledged, that a single man in possession of a good fortune, "
     "must be in want of a wife. However little known the feelings or views of such a man may be "
     "on his first entering a neighbourhood, this truth is so well fixed in the minds of the "
     "surrounding families, that he is considered the rightful property of some one or other of "
     "their daughters."),
    ("Walden", "Economy",
     "When I wrote the following pages, or rather the bulk of them, I lived alone, in the woods, "
     "a mile from any neighbor, in a house which I had built myself, on the shore of Walden Pond, "
     "in Concord, Massachusetts, and earned my living by the labor of my hands only. I lived there "
     "two years and two months. At present I am a sojourner in civilized life again."),
]  # fmt: skip


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _paragraph(draw: ImageDraw.ImageDraw, text: str, y: int, width_chars: int = 86) -> int:
    for line in textwrap.wrap(text, width_chars):
        draw.text((80, y), line, fill="black", font=_font(16))
        y += 22
    return y + 18


def _table(draw: ImageDraw.ImageDraw, y: int, rng: random.Random) -> int:
    cols, rows, cell_w, cell_h = 4, 5, 160, 30
    for r in range(rows + 1):
        draw.line([(100, y + r * cell_h), (100 + cols * cell_w, y + r * cell_h)], fill="black")
    for c in range(cols + 1):
        draw.line([(100 + c * cell_w, y), (100 + c * cell_w, y + rows * cell_h)], fill="black")
    headers = ["Variety", "Region", "Count", "Weight"]
    for c in range(cols):
        for r in range(rows):
            text = headers[c] if r == 0 else f"{rng.randint(1, 999)}"
            draw.text((110 + c * cell_w, y + 7 + r * cell_h), text, fill="black", font=_font(14))
    return y + rows * cell_h + 30


def _figure(img: Image.Image, draw: ImageDraw.ImageDraw, y: int, rng: random.Random) -> int:
    w, h = 420, 260
    x = (PAGE_SIZE[0] - w) // 2
    sky = Image.linear_gradient("L").resize((w, h)).convert("RGB")
    img.paste(Image.merge("RGB", [c.point(lambda v, k=k: v * k // 3) for k, c in
                                   zip((1, 2, 3), sky.split(), strict=True)]), (x, y))  # fmt: skip
    for _ in range(6):
        cx, cy, r = x + rng.randint(40, w - 40), y + rng.randint(40, h - 40), rng.randint(15, 45)
        color = (rng.randint(80, 255), rng.randint(40, 200), rng.randint(0, 120))
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
    draw.text(
        (x, y + h + 8), "Figure 1. Specimens as drawn in the field.", fill="black", font=_font(14)
    )
    return y + h + 50


def render_pages(count: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """`count` PNG pages as (file name, bytes)."""
    rng = random.Random(seed)
    pages = []
    for i in range(count):
        title, section, text = TEXTS[i % len(TEXTS)]
        img = Image.new("RGB", PAGE_SIZE, "white")
        draw = ImageDraw.Draw(img)
        draw.text((80, 60), title, fill="black", font=_font(34))
        y = _paragraph(draw, text, 130)
        draw.text((80, y), section, fill="black", font=_font(24))
        y += 45
        y = _table(draw, y, rng) if i % 2 == 0 else _figure(img, draw, y, rng)
        y = _paragraph(draw, text[: len(text) // 2 + rng.randint(0, len(text) // 2)], y)
        draw.text(
            (PAGE_SIZE[0] // 2 - 10, PAGE_SIZE[1] - 50), str(i + 1), fill="black", font=_font(14)
        )
        out = io.BytesIO()
        img.save(out, "PNG")
        pages.append((f"page-{i + 1:03}.png", out.getvalue()))
    return pages
