"""Pascal VOC XML: one `Annotations/<id>.xml` per image, `<object>`s with a `<name>` and a
`<bndbox>`. VOC holds rectangles only. XML is parsed with defusedxml (no entity expansion, no
external entities).

Coordinates follow the VOC devkit, as supervision and datumaro's `voc-one-based` mode read
them: 1-based pixel indices, `xmax`/`ymax` inclusive. A box [x, y, w, h] in darkroom's
0-based continuous pixels is written `xmin = x + 1`, `xmax = x + w`. An archive with a 0
`xmin` or `ymin` cannot be 1-based: Roboflow, CVAT and datumaro write 0-based edges, and such
an archive is read as `x = xmin`, `w = xmax - xmin`.

`difficult`, `truncated`, `occluded`, `pose`, the action flags of the person layout and
CVAT's `<attributes>` become shape attributes and are written back; the `<part>`s of an
object (head, hand, foot of the person layout) stay with it, as its attribute `parts`
(`[{"name": "head", "bbox": [x, y, w, h]}, …]`, written back as `<part>`s): they are not
objects, and their names are not the version's labels.
Segmentation masks (`SegmentationClass/`, `SegmentationObject/`) are not imported, and the
import says so.
"""

from __future__ import annotations

import dataclasses
import posixpath
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from darkroom.formats.archive import SafeZip
from darkroom.formats.records import (
    ExportImage,
    ParsedDataset,
    ParsedImage,
    Skipped,
    asset_name,
    is_image,
    numbers,
)
from darkroom.values import ShapeIn

__all__ = ["FLAGS", "parse_voc", "write_labelmap", "write_voc"]

FLAGS = ("difficult", "truncated", "occluded")  # 0/1 in VOC; `pose` is a word
ACTIONS = ("jumping", "phoning", "playinginstrument", "reading", "ridingbike", "ridinghorse",
           "running", "takingphoto", "usingcomputer", "walking", "other")  # fmt: skip


def _text(node: Element | None, tag: str) -> str | None:
    child = node.find(tag) if node is not None else None
    return child.text.strip() if child is not None and child.text else None


def _mask_folder(path: str) -> str | None:
    """The VOC segmentation folder `path` lies in (`…/SegmentationClass`), if any."""
    parts = path.split("/")[:-1]
    for i, part in enumerate(parts):
        if part.lower().startswith("segmentation"):
            return "/".join(parts[: i + 1])
    return None


def _xml_id(path: str) -> str:
    """`VOC2012/Annotations/sub/x.xml` → `VOC2012/sub/x`: the image's name without extension
    (or with it, when darkroom wrote `Annotations/x.png.xml` for a stem shared by two)."""
    parts = posixpath.splitext(path)[0].split("/")
    for i, part in enumerate(parts[:-1]):
        if part.lower() == "annotations":
            return "/".join(parts[:i] + parts[i + 1 :])
    return "/".join(parts)


def parse_voc(archive: SafeZip) -> tuple[ParsedDataset, dict[str, str]]:
    """Parses every XML file; returns the dataset and asset name → archive path of images."""
    skipped: list[Skipped] = []
    labels: dict[str, None] = {}
    by_name: dict[str, ParsedImage] = {}
    by_stem: dict[str, list[str]] = {}
    by_base: dict[str, list[str]] = {}
    files: dict[str, str] = {}
    masks: dict[str, int] = {}
    for path in archive.paths:
        if not is_image(path):
            continue
        if (folder := _mask_folder(path)) is not None:
            masks[folder] = masks.get(folder, 0) + 1
            continue
        name = asset_name(path)
        if name in files:
            skipped.append(Skipped(path, f"another image has the same name {name} ({files[name]})"))
            continue
        files[name] = path
        by_name[name] = ParsedImage(name)
        by_stem.setdefault(posixpath.splitext(name)[0], []).append(name)
        by_base.setdefault(posixpath.basename(name), []).append(name)
    for folder, count in masks.items():
        skipped.append(Skipped(f"{folder}/", f"{count} segmentation masks not imported "
                                             "(darkroom imports VOC boxes)"))  # fmt: skip
    for path in archive.paths:
        if not path.lower().endswith(".xml"):
            continue
        try:
            root = SafeET.fromstring(archive.read(path))
        except (SafeET.ParseError, DefusedXmlException) as exc:
            skipped.append(Skipped(path, f"unreadable XML ({exc})"))
            continue
        image = _image_of(path, root, by_name, by_stem, by_base)
        if isinstance(image, str):
            skipped.append(Skipped(path, image))
            continue
        for i, obj in enumerate(root.iter("object")):
            shape = _object(obj)
            if shape is None:
                skipped.append(Skipped(f"{path} object {i}", "no <name> or incomplete <bndbox>"))
                continue
            if shape.attributes and "parts" in shape.attributes:  # a CVAT <attribute> so named
                kept = {k: v for k, v in shape.attributes.items() if k != "parts"}
                shape = dataclasses.replace(shape, attributes=kept or None)
                skipped.append(Skipped(f"{path} object {i}", PARTS_ATTRIBUTE))
            parts = []
            for j, node in enumerate(obj.iterfind("part")):  # the person layout: head, hand…
                part = _object(node)
                if part is None:
                    where = f"{path} object {i} part {j}"
                    skipped.append(Skipped(where, "no <name> or incomplete <bndbox>"))
                    continue
                parts.append({"name": part.label, "bbox": part.bbox})
            if parts:
                shape = dataclasses.replace(shape, attributes={**(shape.attributes or {}),
                                                               "parts": parts})  # fmt: skip
            labels[shape.label] = None
            image.shapes.append(shape)
    zero_based = any(
        box[0] == 0 or box[1] == 0
        for image in by_name.values()
        for s in image.shapes
        for box in (s.bbox, *(p["bbox"] for p in (s.attributes or {}).get("parts", [])))
    )
    for image in by_name.values():
        image.shapes = [_pixels(s, zero_based) for s in image.shapes]
    return ParsedDataset(list(labels), list(by_name.values()), skipped, images_listed=False), files


PARTS_ATTRIBUTE = "attribute 'parts' not kept: darkroom keeps an object's <part>s under that name"


def _pixels(shape: ShapeIn, zero_based: bool) -> ShapeIn:
    """The raw [xmin, ymin, xmax, ymax] of `_object` (and of its parts) as boxes in 0-based
    continuous pixels."""
    attributes = shape.attributes
    if attributes and "parts" in attributes:
        parts = [{**p, "bbox": _box(p["bbox"], zero_based)} for p in attributes["parts"]]
        attributes = {**attributes, "parts": parts}
    return dataclasses.replace(shape, bbox=_box(shape.bbox, zero_based), attributes=attributes)


def _box(raw: Any, zero_based: bool) -> list[float]:
    x0, y0, x1, y1 = raw
    if zero_based:
        return [x0, y0, x1 - x0, y1 - y0]
    return [x0 - 1, y0 - 1, x1 - x0 + 1, y1 - y0 + 1]


def _image_of(
    path: str,
    root: Element,
    by_name: dict[str, ParsedImage],
    by_stem: dict[str, list[str]],
    by_base: dict[str, list[str]],
) -> ParsedImage | str:
    """The image an XML file describes: by its own path (the devkit's id), else by its
    `<filename>`; or why none."""
    xml_id = _xml_id(path)
    if xml_id in by_name:
        return by_name[xml_id]
    if len(same := by_stem.get(xml_id, [])) == 1:
        return by_name[same[0]]
    filename = _text(root, "filename")
    if not filename:
        return "no <filename>, and no image named as the XML file"
    folder = posixpath.dirname(xml_id)
    for candidate in (posixpath.join(folder, filename), filename):
        if candidate in by_name:
            return by_name[candidate]
    same = by_base.get(posixpath.basename(filename), [])
    if len(same) == 1:
        return by_name[same[0]]
    if same:
        return f"image {filename} is ambiguous: {', '.join(same[:3])}"
    return f"image {filename} is not in the archive"


def _object(obj: Element) -> ShapeIn | None:
    """The object (or a `<part>` of one) as a rectangle whose `bbox` holds the file's raw
    [xmin, ymin, xmax, ymax] until `_pixels` knows the archive's convention."""
    label = _text(obj, "name")
    box = obj.find("bndbox")
    try:
        x0, y0, x1, y1 = (float(_text(box, k) or "nan") for k in ("xmin", "ymin", "xmax", "ymax"))
    except ValueError:
        return None
    if not label or any(v != v for v in (x0, y0, x1, y1)):
        return None
    attributes: dict[str, Any] = {}
    for flag in FLAGS:
        value = _text(obj, flag)
        if value is not None:
            attributes[flag] = 1 if value.lower() in ("1", "true", "yes") else 0
    if (pose := _text(obj, "pose")) is not None:
        attributes["pose"] = pose
    for action in obj.iterfind("actions/*"):
        attributes[action.tag] = 1 if (action.text or "").strip() in ("1", "true") else 0
    for attribute in obj.iterfind("attributes/attribute"):
        name, value = _text(attribute, "name"), _text(attribute, "value")
        if name:
            attributes[name] = value
    score_text = _text(obj, "score")
    try:
        score = float(score_text) if score_text else None
    except ValueError:
        score = None
    return ShapeIn("rectangle", label, bbox=[x0, y0, x1, y1], score=score,
                   attributes=attributes or None)  # fmt: skip


def write_voc(image: ExportImage, image_dir: str = "JPEGImages") -> bytes:
    root = Element("annotation")
    folder, filename = posixpath.split(posixpath.join(image_dir, image.filename))
    SubElement(root, "folder").text = folder
    SubElement(root, "filename").text = filename
    size = SubElement(root, "size")
    SubElement(size, "width").text = str(image.width)
    SubElement(size, "height").text = str(image.height)
    SubElement(size, "depth").text = "3"
    for s in image.shapes:
        if s.kind != "rectangle" or s.bbox is None:
            continue
        attributes = dict(s.attributes or {})
        obj = SubElement(root, "object")
        SubElement(obj, "name").text = s.label
        SubElement(obj, "pose").text = str(attributes.pop("pose", "Unspecified"))
        for flag in FLAGS:
            SubElement(obj, flag).text = "1" if attributes.pop(flag, 0) else "0"
        _bndbox(obj, s.bbox)
        for part in attributes.pop("parts", None) or []:
            # rows stored before `parts` was validated may hold anything under that name
            if not isinstance(part, dict) or not part.get("name"):
                continue
            if numbers(bbox := part.get("bbox")) and len(bbox) == 4:
                node = SubElement(obj, "part")
                SubElement(node, "name").text = str(part["name"])
                _bndbox(node, bbox)
        if s.score is not None:
            SubElement(obj, "score").text = format(s.score, ".10g")
        if actions := [a for a in ACTIONS if a in attributes]:
            node = SubElement(obj, "actions")
            for action in actions:
                SubElement(node, action).text = "1" if attributes.pop(action) else "0"
        if attributes:
            extra = SubElement(obj, "attributes")
            for name, value in attributes.items():
                attribute = SubElement(extra, "attribute")
                SubElement(attribute, "name").text = name
                SubElement(attribute, "value").text = "" if value is None else str(value)
    return tostring(root, encoding="utf-8", xml_declaration=True)


def _bndbox(parent: Element, bbox: Any) -> None:
    x, y, w, h = bbox
    box = SubElement(parent, "bndbox")
    for key, value in (("xmin", x + 1), ("ymin", y + 1), ("xmax", x + w), ("ymax", y + h)):
        SubElement(box, key).text = format(value, ".10g")


def write_labelmap(labels: list[tuple[str, str]]) -> bytes:
    """`labelmap.txt` for (name, '#rrggbb') labels: how datumaro and CVAT learn a VOC export's
    labels beyond VOC's twenty classes."""
    lines = ["# label:color_rgb:parts:actions"]
    for name, color in labels:
        rgb = ",".join(str(int(color[i : i + 2], 16)) for i in (1, 3, 5))
        lines.append(f"{name}:{rgb}::")
    return ("\n".join(lines) + "\n").encode()
