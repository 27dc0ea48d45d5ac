"""Pascal VOC XML: one `Annotations/<stem>.xml` per image with `<object><name>` and a
`<bndbox>` of xmin/ymin/xmax/ymax in pixels. VOC holds rectangles only. XML is parsed with
defusedxml (no entity expansion, no external entities)."""

from __future__ import annotations

import posixpath
from xml.etree.ElementTree import Element, SubElement, tostring

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from darkroom.domain.annotations import ShapeIn
from darkroom.formats.archive import SafeZip
from darkroom.formats.records import (
    IMAGE_EXTENSIONS,
    ExportImage,
    ParsedDataset,
    ParsedImage,
    Skipped,
)

__all__ = ["parse_voc", "write_voc"]


def _text(node: Element | None, tag: str) -> str | None:
    child = node.find(tag) if node is not None else None
    return child.text.strip() if child is not None and child.text else None


def parse_voc(archive: SafeZip) -> tuple[ParsedDataset, dict[str, str]]:
    """Parses every XML file; returns the dataset and asset name → archive path of images."""
    skipped: list[Skipped] = []
    labels: dict[str, None] = {}
    by_name: dict[str, ParsedImage] = {}
    files: dict[str, str] = {}
    for path in archive.paths:
        if not path.lower().endswith(IMAGE_EXTENSIONS):
            continue
        name = posixpath.basename(path)
        if name in files:
            skipped.append(Skipped(path, f"another image is also named {name}"))
            continue
        files[name] = path
        by_name[name] = ParsedImage(name)
    for path in archive.paths:
        if not path.lower().endswith(".xml"):
            continue
        try:
            root = SafeET.fromstring(archive.read(path))
        except (SafeET.ParseError, DefusedXmlException) as exc:
            skipped.append(Skipped(path, f"unreadable XML ({exc})"))
            continue
        filename = _text(root, "filename")
        if not filename:
            skipped.append(Skipped(path, "no <filename>"))
            continue
        image = by_name.get(posixpath.basename(filename))
        if image is None:
            skipped.append(Skipped(path, f"image {filename} is not in the archive"))
            continue
        for i, obj in enumerate(root.iter("object")):
            label = _text(obj, "name")
            box = obj.find("bndbox")
            try:
                x0, y0, x1, y1 = (
                    float(_text(box, k) or "nan") for k in ("xmin", "ymin", "xmax", "ymax")
                )
            except ValueError:
                x0 = float("nan")
            if not label or x0 != x0:
                skipped.append(Skipped(f"{path} object {i}", "no <name> or incomplete <bndbox>"))
                continue
            labels[label] = None
            score_text = _text(obj, "score")
            try:
                score = float(score_text) if score_text else None
            except ValueError:
                score = None
            image.shapes.append(
                ShapeIn("rectangle", label, bbox=[x0, y0, x1 - x0, y1 - y0], score=score)
            )
    return ParsedDataset(list(labels), list(by_name.values()), skipped, images_listed=False), files


def write_voc(image: ExportImage, image_dir: str = "JPEGImages") -> bytes:
    root = Element("annotation")
    SubElement(root, "folder").text = image_dir
    SubElement(root, "filename").text = posixpath.basename(image.filename)
    size = SubElement(root, "size")
    SubElement(size, "width").text = str(image.width)
    SubElement(size, "height").text = str(image.height)
    SubElement(size, "depth").text = "3"
    for s in image.shapes:
        if s.kind != "rectangle" or s.bbox is None:
            continue
        x, y, w, h = s.bbox
        obj = SubElement(root, "object")
        SubElement(obj, "name").text = s.label
        SubElement(obj, "difficult").text = "0"
        box = SubElement(obj, "bndbox")
        for key, value in (("xmin", x), ("ymin", y), ("xmax", x + w), ("ymax", y + h)):
            SubElement(box, key).text = format(value, ".10g")
        if s.score is not None:
            SubElement(obj, "score").text = format(s.score, ".10g")
    return tostring(root, encoding="utf-8", xml_declaration=True)
