"""The transform catalog the server checks pipelines against matches the installed
albumentations (regenerate with `python -m darkroom.processings.augmentation_catalog`)."""

from __future__ import annotations

from darkroom.processings.augmentation_catalog import build_catalog, load_catalog
from darkroom.processings.data_augmentation import PRESETS


def test_catalog_matches_installed_albumentations():
    assert build_catalog() == load_catalog()


def test_presets_use_catalogued_transforms_and_arguments():
    transforms = load_catalog()["transforms"]
    for steps in PRESETS.values():
        for step in steps:
            assert set(step) - {"transform"} <= set(transforms[step["transform"]]), step
