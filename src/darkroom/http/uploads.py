"""Fields of multipart uploads that the API and the pages read alike: a model's labels, given
as names or as a TF-OD label map file."""

from __future__ import annotations

import json

from fastapi import UploadFile

from darkroom.errors import InvalidInput

__all__ = ["LABEL_MAP_MAX_BYTES", "labels_field", "labels_or_label_map"]


def labels_field(raw: str | None) -> list[str] | None:
    """A form's labels: a JSON list of names, or names separated by commas."""
    if raw is None or not raw.strip():
        return None
    if raw.strip().startswith("["):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"labels: invalid JSON ({exc})", details={"loc": ["labels"]}
            ) from exc
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise InvalidInput("labels must be a list of names", details={"loc": ["labels"]})
        return value
    return [x.strip() for x in raw.split(",") if x.strip()]


LABEL_MAP_MAX_BYTES = 1024**2


def labels_or_label_map(labels: str | None, label_map: UploadFile | None) -> list[str] | None:
    """An upload's labels: the `labels` field, or the names of a TF-OD label map file."""
    names = labels_field(labels)
    if label_map is not None and label_map.filename:
        if names:
            raise InvalidInput("give labels or a label map, not both", details={"loc": ["labels"]})
        names = _label_map(label_map.file.read(LABEL_MAP_MAX_BYTES + 1))
    return names


def _label_map(data: bytes) -> list[str]:
    from darkroom.inference.tf_graph import parse_label_map

    if len(data) > LABEL_MAP_MAX_BYTES:
        raise InvalidInput("the label map is larger than 1 MiB", details={"loc": ["label_map"]})
    try:
        return parse_label_map(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(
            f"label map: {exc}", code="bad_label_map", details={"loc": ["label_map"]}
        ) from exc
