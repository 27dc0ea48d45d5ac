"""Request and response bodies at the HTTP edge, in families: `XCreate`, `XUpdate`, `XPublic`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from darkroom.db.models import Annotation, Asset, Shape

T = TypeVar("T")


class Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next: int | None = Field(description="pass as ?after= to get the next page; null at the end")


class Health(BaseModel):
    status: str
    version: str


class DatasetCreate(BaseModel):
    name: str
    description: str = ""


class DatasetUpdate(BaseModel):
    name: str | None = None
    description: str | None = None


class DatasetPublic(Public):
    id: int
    name: str
    description: str
    created_at: datetime
    updated_at: datetime


class VersionCreate(BaseModel):
    name: str
    description: str = ""
    parent_version_id: int | None = None


class VersionUpdate(BaseModel):
    name: str | None = None
    description: str | None = None


class VersionPublic(Public):
    id: int
    dataset_id: int
    name: str
    description: str
    parent_version_id: int | None
    produced_by_job_id: int | None
    created_at: datetime
    updated_at: datetime


class LabelCountPublic(Public):
    label_id: int
    name: str
    color: str
    shapes: int


class VersionStatsPublic(Public):
    assets: int
    annotated_assets: int
    shapes: int
    labels: list[LabelCountPublic]


class LabelCreate(BaseModel):
    name: str
    color: str | None = Field(None, description="#rrggbb; picked from a palette when omitted")


class LabelUpdate(BaseModel):
    name: str | None = None
    color: str | None = None
    position: int | None = Field(None, ge=0)


class LabelPublic(Public):
    id: int
    version_id: int
    name: str
    color: str
    position: int


class AssetPublic(BaseModel):
    id: int
    version_id: int
    filename: str
    mime: str
    width: int
    height: int
    blob_sha256: str
    tags: list[str]
    metadata: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, asset: Asset) -> AssetPublic:
        return cls(
            id=asset.id,
            version_id=asset.version_id,
            filename=asset.filename,
            mime=asset.mime,
            width=asset.width,
            height=asset.height,
            blob_sha256=asset.blob_sha256,
            tags=asset.tags,
            metadata=asset.meta,
            created_at=asset.created_at,
        )


class AssetUpdate(BaseModel):
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None


class AssetsCreated(BaseModel):
    items: list[AssetPublic]


class ShapeCreate(BaseModel):
    kind: str = Field(description="rectangle | polygon | classification | point")
    label: str = Field(description="label name in the asset's version")
    bbox: list[float] | None = Field(None, description="[x, y, w, h] in pixels, for rectangles")
    points: list[list[float]] | None = Field(None, description="[[x, y], …] for polygons, points")
    score: float | None = None


class AnnotationWrite(BaseModel):
    shapes: list[ShapeCreate]


class ShapePublic(BaseModel):
    id: int
    kind: str
    label: str
    label_id: int
    bbox: list[float] | None
    points: list[list[float]] | None
    score: float | None

    @classmethod
    def of(cls, shape: Shape, label_names: dict[int, str]) -> ShapePublic:
        bbox = [shape.x, shape.y, shape.w, shape.h] if shape.kind == "rectangle" else None
        return cls(
            id=shape.id,
            kind=shape.kind,
            label=label_names.get(shape.label_id, "?"),
            label_id=shape.label_id,
            bbox=bbox,  # type: ignore[arg-type]
            points=shape.points,
            score=shape.score,
        )


class AnnotationPublic(BaseModel):
    id: int
    asset_id: int
    author_kind: str
    author_id: int
    status: str
    created_at: datetime
    updated_at: datetime
    shapes: list[ShapePublic]

    @classmethod
    def of(cls, ann: Annotation, label_names: dict[int, str]) -> AnnotationPublic:
        return cls(
            id=ann.id,
            asset_id=ann.asset_id,
            author_kind=ann.author_kind,
            author_id=ann.author_id,
            status=ann.status,
            created_at=ann.created_at,
            updated_at=ann.updated_at,
            shapes=[ShapePublic.of(s, label_names) for s in ann.shapes],
        )


class AnnotationsPublic(BaseModel):
    items: list[AnnotationPublic]


class SkippedPublic(Public):
    item: str
    reason: str


class ImportReportPublic(Public):
    format: str
    images_added: int
    images_matched: int
    shapes_added: int
    labels_created: list[str]
    skipped: list[SkippedPublic]
    skipped_count: int
