"""Data: AbdomenAtlas-layout reader, label conversion tables, resampling and normalisation, patch sampling."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Every name is loaded from its submodule on first use (PEP 562): the patch pipeline and the resampling
# import torch and MONAI (seconds), and the command lines and readers that only need labels or volumes
# (eanno-eval, eanno-convert, every --help) must not pay for them.
_WHERE = {
    "Case": "atlas",
    "DataError": "atlas",
    "canonical": "atlas",
    "read_atlas_case": "atlas",
    "read_case": "atlas",
    "read_volume": "atlas",
    "CLASS_NAMES": "labels",
    "LESION_LABELS": "labels",
    "LabelTable": "labels",
    "LabelTableError": "labels",
    "load_label_table": "labels",
    "read_class_map": "labels",
    "Augment": "patches",
    "PatchDataset": "patches",
    "Sampling": "patches",
    "crop": "patches",
    "DEFAULT_CLIP": "preprocess",
    "Prepared": "preprocess",
    "clip_hu": "preprocess",
    "intensity_stats": "preprocess",
    "normalise": "preprocess",
    "prepare": "preprocess",
    "resample_image": "preprocess",
    "resample_labels": "preprocess",
    "target_shape": "preprocess",
    "phantom_case": "sources",
    "phantom_cases": "sources",
    "training_phantoms": "sources",
}

if TYPE_CHECKING:  # the names as type checkers and IDEs see them
    from .atlas import Case, DataError, canonical, read_atlas_case, read_case, read_volume
    from .labels import (
        CLASS_NAMES,
        LESION_LABELS,
        LabelTable,
        LabelTableError,
        load_label_table,
        read_class_map,
    )
    from .patches import Augment, PatchDataset, Sampling, crop
    from .preprocess import (
        DEFAULT_CLIP,
        Prepared,
        clip_hu,
        intensity_stats,
        normalise,
        prepare,
        resample_image,
        resample_labels,
        target_shape,
    )
    from .sources import phantom_case, phantom_cases, training_phantoms


def __getattr__(name: str) -> object:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CLASS_NAMES",
    "DEFAULT_CLIP",
    "LESION_LABELS",
    "Augment",
    "Case",
    "DataError",
    "LabelTable",
    "LabelTableError",
    "PatchDataset",
    "Prepared",
    "Sampling",
    "canonical",
    "clip_hu",
    "crop",
    "intensity_stats",
    "load_label_table",
    "normalise",
    "phantom_case",
    "phantom_cases",
    "prepare",
    "read_atlas_case",
    "read_case",
    "read_class_map",
    "read_volume",
    "resample_image",
    "resample_labels",
    "target_shape",
    "training_phantoms",
]
