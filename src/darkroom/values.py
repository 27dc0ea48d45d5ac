"""Plain values every layer shares, with no SQLAlchemy: the kinds and statuses stored in the
database (the ORM models in `darkroom.db.models` use them), a shape as callers give it, an image
reference's form, and the clock. A leaf: it imports nothing of darkroom but its errors, so the
formats, the bundles, the CLI and the domain import it without importing each other."""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from darkroom.errors import InvalidInput

__all__ = [
    "ACTIVE_STATUSES",
    "IMAGE_REFERENCE",
    "AuthorKind",
    "DeploymentStatus",
    "ProcessingType",
    "RunStatus",
    "ShapeIn",
    "ShapeKind",
    "TargetKind",
    "TriggerKind",
    "check_kinds",
    "utcnow",
]

# A container image reference, registry/name:tag or @digest (a processing's image source).
IMAGE_REFERENCE = re.compile(r"^[a-z0-9]+([._/:@-][a-zA-Z0-9_.-]+)*$")


class ShapeKind(enum.StrEnum):
    rectangle = "rectangle"
    polygon = "polygon"
    classification = "classification"
    point = "point"
    mask = "mask"  # a COCO RLE (crowd regions); its box in x, y, w, h


class AuthorKind(enum.StrEnum):
    user = "user"
    run = "run"
    prediction = "prediction"  # a user's imported model output (a COCO results file)


class ProcessingType(enum.StrEnum):
    pre_annotation = "pre_annotation"
    data_augmentation = "data_augmentation"
    dataset_version_creation = "dataset_version_creation"
    auto_tagging = "auto_tagging"
    model_conversion = "model_conversion"
    model_evaluation = "model_evaluation"
    custom = "custom"


class TargetKind(enum.StrEnum):
    dataset_version = "dataset_version"
    model_version = "model_version"
    experiment = "experiment"
    deployment = "deployment"


class RunStatus(enum.StrEnum):
    pending = "pending"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


ACTIVE_STATUSES = (RunStatus.pending, RunStatus.running)


class DeploymentStatus(enum.StrEnum):
    starting = "starting"
    serving = "serving"
    stopped = "stopped"
    failed = "failed"


class TriggerKind(enum.StrEnum):
    assets = "assets"  # new assets in a version: N of them, or T seconds after the first
    version = "version"  # a version created by a person in a dataset
    schedule = "schedule"  # a cron expression, on a version


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ShapeIn:
    """A shape as callers give it: geometry in pixels, label by name."""

    kind: str
    label: str
    bbox: Sequence[float] | None = None  # x, y, w, h
    points: Sequence[Sequence[float]] | None = None
    score: float | None = None
    rings: Sequence[Sequence[Sequence[float]]] | None = None
    mask: dict[str, Any] | None = None
    keypoints: Sequence[Sequence[float]] | None = None
    attributes: dict[str, Any] | None = None


def check_kinds(type_: str, target: str) -> None:
    """A processing's type and target are among the known ones."""
    if type_ not in ProcessingType.__members__:
        raise InvalidInput(
            f"type must be one of {', '.join(ProcessingType)}", details={"loc": ["type"]}
        )
    if target not in TargetKind.__members__:
        raise InvalidInput(
            f"target must be one of {', '.join(TargetKind)}", details={"loc": ["target"]}
        )
