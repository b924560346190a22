"""Tissue ids of the phantom's internal map, their HU ranges (portal-venous phase) and their class labels."""

from __future__ import annotations

from enum import IntEnum
from types import MappingProxyType
from typing import TypedDict

import numpy as np
from eanno_contracts.labels import CLASS_NAMES, CYST, DUCT, PANCREAS, PDAC, PNET


class Tissue(IntEnum):
    """Internal tissue ids; each case draws one HU per tissue from its range."""

    AIR = 0
    SUBCUT_FAT = 1
    MUSCLE = 2
    VISCERAL_FAT = 3
    BONE_CORTEX = 4
    BONE_MARROW = 5
    CANAL = 6
    DISC = 7
    LIVER = 8
    SPLEEN = 9
    KIDNEY = 10
    AORTA = 11
    ARTERY = 12
    VEIN = 13
    BOWEL_WALL = 14
    BOWEL_GAS = 15
    BOWEL_FLUID = 16
    STOMACH_WALL = 17
    PANCREAS = 18
    DUCT = 19
    FAT_LOBULE = 20
    LYMPH_NODE = 21
    GALLBLADDER = 22
    # look-alikes (lookalikes.py); their HU are drawn from a stream of their own, not from HU_RANGES
    CALCIFICATION = 23
    ORGAN_CYST = 24
    SPLENIC_LESION = 25
    DIVERTICULUM = 26
    # lesion instances take FIRST_LESION + k so that each has its own HU and centroid
    FIRST_LESION = 40


N_TISSUES = 64
MAX_LESIONS = N_TISSUES - Tissue.FIRST_LESION

# HU ranges: parenchyma 80-120, fat about -100, contrast-filled vessels well above soft tissue.
HU_RANGES = MappingProxyType(
    {
        Tissue.AIR: (-1000.0, -990.0),
        Tissue.SUBCUT_FAT: (-120.0, -90.0),
        Tissue.MUSCLE: (40.0, 60.0),
        Tissue.VISCERAL_FAT: (-110.0, -85.0),
        Tissue.BONE_CORTEX: (650.0, 900.0),
        Tissue.BONE_MARROW: (180.0, 320.0),
        Tissue.CANAL: (10.0, 30.0),
        Tissue.DISC: (70.0, 100.0),
        Tissue.LIVER: (95.0, 125.0),
        Tissue.SPLEEN: (105.0, 130.0),
        Tissue.KIDNEY: (150.0, 200.0),
        Tissue.AORTA: (160.0, 260.0),
        Tissue.ARTERY: (160.0, 260.0),
        Tissue.VEIN: (130.0, 190.0),
        Tissue.BOWEL_WALL: (45.0, 75.0),
        Tissue.BOWEL_GAS: (-1000.0, -900.0),
        Tissue.BOWEL_FLUID: (0.0, 30.0),
        Tissue.STOMACH_WALL: (50.0, 80.0),
        Tissue.PANCREAS: (85.0, 115.0),
        Tissue.DUCT: (5.0, 25.0),
        Tissue.FAT_LOBULE: (-110.0, -70.0),
        Tissue.LYMPH_NODE: (40.0, 70.0),
        Tissue.GALLBLADDER: (0.0, 20.0),
    }
)


class LesionSpec(TypedDict):
    """A lesion class of the phantoms: label id, HU range, the minimum contrast to the parenchyma."""

    label: int
    hu: tuple[float, float]
    min_contrast: float


# Lesion classes: label id, HU range, and the minimum contrast to the parenchyma that keeps them visible.
LESION_CLASSES: MappingProxyType[str, LesionSpec] = MappingProxyType(
    {
        CLASS_NAMES[PDAC]: {"label": PDAC, "hu": (40.0, 80.0), "min_contrast": 25.0},
        CLASS_NAMES[CYST]: {"label": CYST, "hu": (0.0, 20.0), "min_contrast": 60.0},
        CLASS_NAMES[PNET]: {"label": PNET, "hu": (100.0, 200.0), "min_contrast": 30.0},
    }
)
LESION_CLASS_WEIGHTS = MappingProxyType(
    {CLASS_NAMES[PDAC]: 0.45, CLASS_NAMES[CYST]: 0.3, CLASS_NAMES[PNET]: 0.25}
)
# Number of lesions per case: 0 (normal), 1, 2, 3.
LESION_COUNT_WEIGHTS = (0.25, 0.4, 0.2, 0.15)


def label_lut(lesion_labels: dict[int, int]) -> np.ndarray:
    """Tissue id -> class label (pancreas 1, duct 2, lesion instances 3/4/5, everything else 0)."""
    lut = np.zeros(N_TISSUES, np.uint8)
    lut[Tissue.PANCREAS] = PANCREAS
    lut[Tissue.DUCT] = DUCT
    lut[Tissue.CALCIFICATION] = PANCREAS  # a calcification is the parenchyma's, not a lesion
    for tid, label in lesion_labels.items():
        lut[tid] = label
    return lut


def draw_hu(rng: np.random.Generator) -> np.ndarray:
    """One HU per tissue for a case (lesion instances are filled in by the anatomy)."""
    hu = np.full(N_TISSUES, -1000.0, np.float32)
    for tissue, (lo, hi) in HU_RANGES.items():
        hu[tissue] = rng.uniform(lo, hi)
    return hu
