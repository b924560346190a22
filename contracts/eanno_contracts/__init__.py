"""EfficientAnno's shared contracts (CONTRACTS.md at the repository root), implemented once, numpy only.

Every package may import this one, the client included (DESIGN.md, "Architecture"). Import from the
modules: `labels` (the label map), `meta` (META keys and defaults), `geometry` (the sliding window's).
"""
<<<<<<< HEAD

from __future__ import annotations

from .answer import AnswerError, full_size
from .geometry import gaussian_weights, pad_widths, target_shape, tile_starts
from .labels import (
    BACKGROUND,
    CLASS_NAMES,
    CYST,
    DUCT,
    LESION_CLASSES,
    LESION_KEYS,
    LESION_UNION_NAME,
    N_CLASSES,
    PANCREAS,
    PDAC,
    PNET,
    lesion_names,
)
from .meta import DEFAULT_CLIP, DEFAULT_STEP, DEFAULT_THETA, META_KEYS

__all__ = [
    "AnswerError", "BACKGROUND", "CLASS_NAMES", "CYST", "DEFAULT_CLIP", "DEFAULT_STEP", "DEFAULT_THETA", "DUCT", "LESION_CLASSES",
    "LESION_KEYS", "LESION_UNION_NAME", "META_KEYS", "N_CLASSES", "PANCREAS", "PDAC", "PNET", "full_size", "gaussian_weights",
    "lesion_names", "pad_widths", "target_shape", "tile_starts",
]
=======
>>>>>>> main
