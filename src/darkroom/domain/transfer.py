"""Import and export of whole versions in COCO, YOLO and Pascal VOC.

An import adds the archive's images as assets named by their path in the archive (splits stay
apart), or matches images already in the version by name (how a COCO JSON without images
attaches to uploaded assets); `on_existing` says what happens to the shapes those already
carry. It creates the labels it names (none when nothing matched) and adds the shapes as the
importing user's annotations. Bad items are skipped and reported with a reason; the import as a
whole fails only on an unreadable or unsafe archive. It runs in the caller's transaction: all
or nothing. A COCO results file is imported as the user's predictions.
"""

from __future__ import annotations

import dataclasses
import enum
import io
import posixpath
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from darkroom.db.models import SHAPE_DATA, Annotation, Asset, AuthorKind, Label, Shape
from darkroom.domain.accounts import Principal
from darkroom.domain.annotations import (
    Author,
    ShapeIn,
    annotated_assets,
    bulk_add_shapes,
    replace_shapes,
    shape_rows,
)
from darkroom.domain.assets import clean_filename
from darkroom.domain.blobs import register_blobs
from darkroom.domain.images import ImageInfo, probe_image
from darkroom.domain.labels import ensure_labels
from darkroom.domain.versions import get_version
from darkroom.errors import DarkroomError, InvalidInput, UnsupportedMediaType
from darkroom.formats import coco, voc, yolo
from darkroom.formats.archive import SafeZip, is_zip
from darkroom.formats.records import (
    IMAGE_DIRS,
    ExportImage,
    LabelInfo,
    ParsedDataset,
    ParsedImage,
    Skipped,
    is_image,
)
from darkroom.storage import BlobStore, StoredBlob

__all__ = [
    "Format",
    "ImportLimits",
    "ImportReport",
    "OnExisting",
    "export_version",
    "import_into_version",
]

CHUNK = 500
MAX_REPORTED_SKIPS = 1000


class Format(enum.StrEnum):
    coco = "coco"
    yolo = "yolo"
    voc = "voc"


@dataclass(frozen=True, slots=True)
class ImportLimits:
    max_image_pixels: int
    max_archive_bytes: int
    max_archive_ratio: int


@dataclass(slots=True)
class ImportReport:
    format: str
    on_existing: str = "replace"
    images_added: int = 0
    images_matched: int = 0
    shapes_added: int = 0
    shapes_replaced: int = 0
    labels_created: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    skipped_count: int = 0

    def skip(self, item: str, reason: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < MAX_REPORTED_SKIPS:
            self.skipped.append(Skipped(item, reason))


def _parse(
    fmt: Format, fp: BinaryIO, limits: ImportLimits
) -> tuple[ParsedDataset, SafeZip, dict[str, str]]:
    """A zip archive in `fmt`, with asset name → archive path of its images."""
    if not is_zip(fp):
        raise UnsupportedMediaType(
            f"a {fmt.value.upper()} import is a zip archive of images and label files"
        )
    archive = SafeZip(
        fp, max_total_bytes=limits.max_archive_bytes, max_ratio=limits.max_archive_ratio
    )
    if fmt == Format.yolo:
        parsed, files = yolo.parse_yolo(archive)
        return parsed, archive, files
    if fmt == Format.voc:
        parsed, files = voc.parse_voc(archive)
        return parsed, archive, files
    parsed, files = coco.parse_coco_archive(archive)
    return parsed, archive, files


class OnExisting(enum.StrEnum):
    """What an import does to the shapes of images the version already had."""

    replace = "replace"  # the importer's own shapes on them are replaced: re-import is idempotent
    add = "add"  # added beside what is there
    skip = "skip"  # images that carry any shape are left as they are


def import_into_version(
    session: Session,
    store: BlobStore,
    principal: Principal,
    version_id: int,
    fmt: Format,
    fp: BinaryIO,
    limits: ImportLimits,
    on_existing: OnExisting = OnExisting.replace,
) -> ImportReport:
    version = get_version(session, principal, version_id)
    archive: SafeZip | None = None
    if fmt == Format.coco and not is_zip(fp):
        doc = coco.load(fp.read())
        if isinstance(doc, list):
            return _import_results(session, principal, version.id, doc, on_existing)
        parsed, files = coco.parse_document(doc), {}
    else:
        parsed, archive, files = _parse(fmt, fp, limits)
    report = ImportReport(fmt.value, on_existing=on_existing.value)
    for s in parsed.skipped:
        report.skip(s.item, s.reason)
    importer = _Importer(
        session=session,
        store=store,
        version_id=version.id,
        archive=archive,
        files=files,
        limits=limits,
        author=Author.of(principal),
        report=report,
        on_existing=on_existing,
        # Into an empty version nothing can match; skipping the look-ups also spares PostgreSQL
        # from planning them against a table whose statistics predate this transaction.
        version_had_assets=session.scalar(
            select(Asset.id).where(Asset.version_id == version.id).limit(1)
        )
        is not None,
    )
    for start in range(0, len(parsed.images), CHUNK):
        importer.import_chunk(parsed.images[start : start + CHUNK])
    if importer.seen:  # a file that matched no image creates no labels
        importer.write_labels(parsed)
        for start in range(0, len(parsed.images), CHUNK):
            importer.add_shapes(parsed.images[start : start + CHUNK])

    if archive is not None and parsed.images_listed:
        for path in archive.paths:
            if is_image(path) and path not in importer.used_paths:
                report.skip(path, "image not listed in the annotation file")
    session.flush()
    return report


def _on_existing(
    session: Session,
    author: Author,
    on_existing: OnExisting,
    asset_ids: list[int],
    *,
    mine: bool = False,
) -> tuple[int, set[int]]:
    """Applies `on_existing` to assets the import writes to that were there before: (shapes
    replaced, assets to leave alone). `skip` leaves assets with shapes by anyone, or with
    `mine` by `author` only (predictions skip assets that already have the user's)."""
    if not asset_ids or on_existing == OnExisting.add:
        return 0, set()
    if on_existing == OnExisting.replace:
        return replace_shapes(session, author, asset_ids), set()
    return 0, annotated_assets(session, asset_ids, author if mine else None)


def _import_results(
    session: Session,
    principal: Principal,
    version_id: int,
    doc: list[Any],
    on_existing: OnExisting,
) -> ImportReport:
    """A COCO results file: detections with scores, matched to the version's assets by the
    COCO image id an import kept (`metadata.coco_id`) and to labels by their COCO category id.
    Written as the user's predictions, apart from their annotations (never ground truth); with
    `replace`, importing the same file again changes nothing."""
    found, skipped = coco.parse_results(doc)
    report = ImportReport("coco", on_existing=on_existing.value)
    for s in skipped:
        report.skip(s.item, s.reason)
    assets = {}
    for row in session.execute(
        select(Asset.id, Asset.meta, Asset.width, Asset.height).where(
            Asset.version_id == version_id
        )
    ):
        coco_id = (row.meta or {}).get("coco_id")
        if coco_id is not None:
            assets[coco_id] = row
    labels = {
        row.external_id: row
        for row in session.execute(
            select(Label.id, Label.name, Label.external_id).where(
                Label.version_id == version_id, Label.external_id.is_not(None)
            )
        )
    }
    label_ids = {row.name.lower(): row.id for row in labels.values()}
    rows_by_asset: dict[int, list[dict[str, Any]]] = {}
    for n, (image_id, category_id, shape) in enumerate(found):
        asset, label = assets.get(image_id), labels.get(category_id)
        if asset is None:
            why = f"no image of the version has the COCO image id {image_id!r}"
            report.skip(f"detection {n}", why + " (import its ground truth first)")
            continue
        if label is None:
            why = f"no label of the version has the COCO category id {category_id!r}"
            report.skip(f"detection {n}", why)
            continue
        shape = dataclasses.replace(shape, label=label.name)
        try:
            rows = shape_rows([shape], label_ids, asset.width, asset.height)
        except InvalidInput as exc:
            report.skip(f"detection {n}", exc.message.removeprefix("shape 0: "))
            continue
        rows_by_asset.setdefault(asset.id, []).extend(rows)
    author = Author(AuthorKind.prediction, principal.user_id)
    report.images_matched = len(rows_by_asset)
    replaced, left = _on_existing(session, author, on_existing, list(rows_by_asset), mine=True)
    report.shapes_replaced = replaced
    for asset_id in sorted(left):
        report.skip(f"asset {asset_id}", "already has predictions (on_existing=skip)")
        del rows_by_asset[asset_id]
    report.shapes_added = bulk_add_shapes(session, author, list(rows_by_asset.items()))
    session.flush()
    return report


@dataclass
class _Importer:
    """State of one import: which names are assets already, which archive entries were used.

    Images are added first and shapes after, once the labels are known to be needed."""

    session: Session
    store: BlobStore
    version_id: int
    archive: SafeZip | None
    files: dict[str, str]
    limits: ImportLimits
    author: Author
    report: ImportReport
    on_existing: OnExisting
    seen: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # name → id, w, h
    existing: set[int] = field(default_factory=set)  # ids of assets the version had before
    version_had_assets: bool = True
    used_paths: set[str] = field(default_factory=set)
    label_ids: dict[str, int] = field(default_factory=dict)
    _by_base: dict[str, list[Any]] | None = None  # base name → the version's asset rows

    def import_chunk(self, chunk: list[ParsedImage]) -> None:
        names: list[str | None] = []
        for image in chunk:
            try:
                image.name = clean_filename(image.name)
                names.append(image.name)
            except InvalidInput as exc:
                self.report.skip(image.name, exc.message)
                names.append(None)
        if self.version_had_assets:
            self._match_existing([n for n in names if n is not None and n not in self.seen])
        self._add_new_assets(chunk, names)

    def _match_existing(self, names: list[str]) -> None:
        rows = self.session.execute(
            select(Asset.filename, Asset.id, Asset.width, Asset.height).where(
                Asset.version_id == self.version_id, Asset.filename.in_(names)
            )
        )
        for row in rows:
            self._matched(row.filename, row.id, row.width, row.height)
        for name in names:
            if name in self.seen or (self.archive is not None and name in self.files):
                continue
            same = self._version_by_base().get(posixpath.basename(name), [])
            if len(same) == 1:  # a COCO file_name without the folder the asset has
                row = same[0]
                self._matched(name, row.id, row.width, row.height)

    def _matched(self, name: str, asset_id: int, width: int, height: int) -> None:
        self.seen[name] = (asset_id, width, height)
        self.existing.add(asset_id)
        self.report.images_matched += 1
        if name in self.files:
            self.used_paths.add(self.files[name])

    def _version_by_base(self) -> dict[str, list[Any]]:
        if self._by_base is None:
            self._by_base = {}
            for row in self.session.execute(
                select(Asset.filename, Asset.id, Asset.width, Asset.height).where(
                    Asset.version_id == self.version_id
                )
            ):
                self._by_base.setdefault(posixpath.basename(row.filename), []).append(row)
        return self._by_base

    def _load(self, item: tuple[str, str]) -> tuple[ImageInfo, StoredBlob] | DarkroomError:
        """Reads, checks and stores one image.

        Sequential on purpose: with 2 cores, a thread pool here measured 30% slower (the GIL
        is held by Pillow's header parsing more than it is released by I/O).
        """
        name, path = item
        assert self.archive is not None
        data = self.archive.read(path)
        try:
            info = probe_image(io.BytesIO(data), name, self.limits.max_image_pixels)
        except DarkroomError as exc:
            return exc
        return info, self.store.put_bytes(data)

    def _add_new_assets(self, chunk: list[ParsedImage], names: list[str | None]) -> None:
        todo: list[tuple[str, str, Any]] = []  # (asset name, archive path, source id)
        taken: set[str] = set()
        for image, name in zip(chunk, names, strict=True):
            if name is None or name in self.seen or name in taken:
                continue
            path = self.files.get(image.name) or (
                self.archive.find(image.name, *IMAGE_DIRS) if self.archive else None
            )
            if path is None:
                self.report.skip(name, "image file not found in the archive nor in the version")
                continue
            taken.add(name)
            self.used_paths.add(path)
            todo.append((name, path, image.source_id))

        rows: list[dict[str, Any]] = []
        for (name, _, source_id), loaded in zip(
            todo, map(self._load, [t[:2] for t in todo]), strict=True
        ):
            if isinstance(loaded, DarkroomError):
                self.report.skip(name, loaded.message)
                continue
            info, blob = loaded
            meta = {"coco_id": source_id} if source_id is not None else {}
            rows.append({"version_id": self.version_id, "blob_sha256": blob.sha256,
                         "filename": name, "mime": info.mime, "width": info.width,
                         "height": info.height, "metadata": meta, "_size": blob.size})  # fmt: skip
        if not rows:
            return
        register_blobs(self.session, [(r["blob_sha256"], r.pop("_size"), r["mime"]) for r in rows])
        table = Asset.__table__
        ids = self.session.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
        ).scalars()
        for row, asset_id in zip(rows, ids, strict=True):
            self.seen[row["filename"]] = (asset_id, row["width"], row["height"])
        self.report.images_added += len(rows)

    def write_labels(self, parsed: ParsedDataset) -> None:
        """Creates the labels the file names, and keeps what it says of them (COCO category
        ids, keypoint schemas) where the version's label does not say it already."""
        known = {n.lower() for n in self.session.scalars(
            select(Label.name).where(Label.version_id == self.version_id)
        )}  # fmt: skip
        labels = ensure_labels(self.session, self.version_id, parsed.labels)
        self.report.labels_created = [n for n in parsed.labels if n.lower() not in known]
        for name, label in labels.items():
            info = parsed.label_info.get(name)
            if info is not None:
                if label.external_id is None:
                    label.external_id = info.external_id
                if label.keypoints is None:
                    label.keypoints = info.keypoints
        self.label_ids = {label.name.lower(): label.id for label in labels.values()}

    def add_shapes(self, chunk: list[ParsedImage]) -> None:
        items: list[tuple[int, list[dict[str, Any]]]] = []
        for image in chunk:
            if image.name not in self.seen or not image.shapes:
                continue
            asset_id, width, height = self.seen[image.name]
            rows: list[dict[str, Any]] = []
            for i, shape in enumerate(image.shapes):
                if image.normalized:
                    shape = _denormalize(shape, width, height)
                try:
                    rows.extend(shape_rows([shape], self.label_ids, width, height))
                except InvalidInput as exc:
                    self.report.skip(
                        f"{image.name} shape {i}", exc.message.removeprefix("shape 0: ")
                    )
            items.append((asset_id, rows))
        items = self._apply_on_existing(items, chunk)
        self.report.shapes_added += bulk_add_shapes(self.session, self.author, items)

    def _apply_on_existing(
        self, items: list[tuple[int, list[dict[str, Any]]]], chunk: list[ParsedImage]
    ) -> list[tuple[int, list[dict[str, Any]]]]:
        touched = [asset_id for asset_id, _ in items if asset_id in self.existing]
        replaced, left = _on_existing(self.session, self.author, self.on_existing, touched)
        self.report.shapes_replaced += replaced
        if not left:
            return items
        names = {self.seen[image.name][0]: image.name for image in chunk if image.name in self.seen}
        for asset_id in left:
            self.report.skip(names[asset_id], "already annotated in the version (on_existing=skip)")
        return [(asset_id, rows) for asset_id, rows in items if asset_id not in left]


def _denormalize(shape: ShapeIn, width: int, height: int) -> ShapeIn:
    bbox = points = None
    if shape.bbox is not None:
        x, y, w, h = shape.bbox
        bbox = [x * width, y * height, w * width, h * height]
    if shape.points is not None:
        points = [[p[0] * width, p[1] * height] for p in shape.points]
    keypoints = None
    if shape.keypoints is not None:
        keypoints = [[k[0] * width, k[1] * height, k[2]] for k in shape.keypoints]
    return dataclasses.replace(shape, bbox=bbox, points=points, keypoints=keypoints)


def _export_images(session: Session, version_id: int) -> Iterator[tuple[str, ExportImage]]:
    """(blob sha256, image with all authors' shapes) for every asset, in id order."""
    label_names = dict(
        session.execute(select(Label.id, Label.name).where(Label.version_id == version_id)).all()
    )
    after = 0
    while True:
        assets = session.execute(
            select(Asset.id, Asset.blob_sha256, Asset.filename, Asset.width, Asset.height,
                   Asset.meta)
            .where(Asset.version_id == version_id, Asset.id > after)
            .order_by(Asset.id)
            .limit(CHUNK)
        ).all()  # fmt: skip
        if not assets:
            return
        after = assets[-1].id
        shapes: dict[int, list[ShapeIn]] = {}
        for s in session.execute(
            select(Annotation.asset_id, *(getattr(Shape, c) for c in SHAPE_DATA))
            .join(Shape, Shape.annotation_id == Annotation.id)
            .where(Annotation.asset_id.in_([a.id for a in assets]))
            .order_by(Annotation.id, Shape.id)
        ):
            boxed = s.kind in ("rectangle", "mask")
            shapes.setdefault(s.asset_id, []).append(ShapeIn(
                s.kind, label_names[s.label_id], bbox=[s.x, s.y, s.w, s.h] if boxed else None,
                points=s.points, score=s.score, rings=s.rings, mask=s.mask,
                keypoints=s.keypoints, attributes=s.attributes,
            ))  # fmt: skip
        for a in assets:
            coco_id = (a.meta or {}).get("coco_id")
            yield a.blob_sha256, ExportImage(
                a.filename, a.width, a.height, shapes.get(a.id, []),
                coco_id if isinstance(coco_id, int) and not isinstance(coco_id, bool) else None,
            )  # fmt: skip


def _label_files(filenames: list[str], folder: str, suffix: str) -> dict[str, str]:
    """A unique annotation entry per image: `folder/<name without extension><suffix>`, or with
    the extension kept for images of one folder that share a stem (`a.jpg`, `a.png`)."""
    stems = Counter(posixpath.splitext(n)[0] for n in filenames)
    out = {}
    for name in filenames:
        stem = posixpath.splitext(name)[0]
        out[name] = f"{folder}/{stem if stems[stem] == 1 else name}{suffix}"
    return out


def export_version(
    session: Session,
    store: BlobStore,
    principal: Principal,
    version_id: int,
    fmt: Format,
    out: BinaryIO,
) -> int:
    """Writes the version as a zip in `fmt` to `out`; returns the number of images. Every
    entry is unique, and the zip imports back into darkroom as the same version."""
    version = get_version(session, principal, version_id)
    label_rows = session.execute(
        select(Label.name, Label.color, Label.external_id, Label.keypoints)
        .where(Label.version_id == version.id)
        .order_by(Label.position, Label.id)
    ).all()
    labels = [r.name for r in label_rows]
    info = {r.name: LabelInfo(r.external_id, r.keypoints) for r in label_rows}
    class_ids = {name: i for i, name in enumerate(labels)}
    image_dir = "JPEGImages" if fmt == Format.voc else "images"
    entries: dict[str, str] = {}  # asset name → its label file (YOLO, VOC)
    if fmt != Format.coco:
        filenames = list(
            session.scalars(select(Asset.filename).where(Asset.version_id == version.id))
        )
        entries = _label_files(filenames, "Annotations" if fmt == Format.voc else "labels",
                               ".xml" if fmt == Format.voc else ".txt")  # fmt: skip
    count = 0
    records: list[ExportImage] = []
    keypoint_counts: set[int] = set()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for sha, image in _export_images(session, version.id):
            count += 1
            with (
                store.open(sha) as src,
                zf.open(posixpath.join(image_dir, image.filename), "w") as dst,
            ):
                while chunk := src.read(1024 * 1024):
                    dst.write(chunk)
            if fmt == Format.coco:
                records.append(image)
            elif fmt == Format.yolo:
                keypoint_counts.update(len(s.keypoints) for s in image.shapes if s.keypoints)
                records.append(image)
            else:
                zf.writestr(entries[image.filename], voc.write_voc(image))
        if fmt == Format.coco:
            zf.writestr("annotations.json", coco.write_coco(labels, records, info=info))
            if any(s.kind == "classification" for image in records for s in image.shapes):
                image_labels = coco.write_coco(labels, records, info=info, image_labels=True)
                zf.writestr("labels.json", image_labels)
        elif fmt == Format.yolo:
            keypoints = max(keypoint_counts, default=0)
            for image in records:
                zf.writestr(entries[image.filename],
                            yolo.write_yolo_label(image, class_ids, keypoints))  # fmt: skip
            data_yaml, classes = yolo.write_yolo_names(labels, keypoints)
            zf.writestr("data.yaml", data_yaml)
            zf.writestr("classes.txt", classes)
        else:
            ids = [posixpath.splitext(e.removeprefix("Annotations/"))[0] for e in entries.values()]
            zf.writestr("ImageSets/Main/default.txt", "".join(f"{i}\n" for i in sorted(ids)))
            zf.writestr("labelmap.txt", voc.write_labelmap([(r.name, r.color) for r in label_rows]))
    return count
