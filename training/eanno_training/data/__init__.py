"""Data: AbdomenAtlas-layout reader, label conversion tables, resampling and normalisation, patch sampling."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eanno_contracts.lazy import lazy_getattr

# Every name is loaded from its submodule on first use (PEP 562): the patch pipeline and the resampling
# import torch and MONAI (seconds), and the command lines and readers that only need labels or volumes
# (eanno-eval, eanno-convert, every --help) must not pay for them.
__getattr__ = lazy_getattr(
    __name__,
    atlas="Case DataError canonical read_atlas_case read_case read_volume",
    labels="CLASS_NAMES LESION_LABELS LabelTable LabelTableError load_label_table read_class_map",
    patches="Augment PatchDataset Sampling crop",
    preprocess="DEFAULT_CLIP Prepared clip_hu intensity_stats normalise prepare resample_image resample_labels target_shape",
    sources="phantom_case phantom_cases training_phantoms",
)

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
