"""Data: AbdomenAtlas-layout reader, label conversion tables, resampling and normalisation, patch sampling."""

from .atlas import Case, DataError, canonical, read_atlas_case, read_case, read_volume
from .labels import CLASS_NAMES, LESION_LABELS, LabelTable, LabelTableError, load_label_table, read_class_map
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
