"""The inverse direction: a 6-class case written in the MSD Task07 or PANORAMA layout (for exchanging data
with tools that expect those formats, and for testing the converters on generated phantoms)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from eanno_contracts.labels import DUCT, LESION_CLASSES, PANCREAS

from ..phantoms.writer import nifti


def write_msd_case(
    root: str | Path, name: str, ct: np.ndarray, labels: np.ndarray, affine: np.ndarray
) -> None:
    """root/imagesTr/<name>.nii.gz + root/labelsTr/<name>.nii.gz: 1 pancreas (organ with duct), 2 any lesion."""
    root = Path(root)
    lab = np.where(np.isin(labels, LESION_CLASSES), 2, np.where(labels > 0, 1, 0)).astype(np.uint8)
    for sub, arr in (("imagesTr", ct), ("labelsTr", lab)):
        (root / sub).mkdir(parents=True, exist_ok=True)
        nib.save(nifti(arr, affine), root / sub / f"{name}.nii.gz")


def panorama_labels(labels: np.ndarray, vessels: np.ndarray | None = None) -> np.ndarray:
    """6-class map -> PANORAMA ids: 4 parenchyma, 5 duct, 1 any lesion (PANORAMA knows PDAC only);
    `vessels` (optional, same shape, PANORAMA ids 2/3/6) is painted where the 6-class map is background."""
    lab = np.zeros(labels.shape, np.uint8)
    lab[labels == PANCREAS] = 4
    lab[labels == DUCT] = 5
    lab[np.isin(labels, LESION_CLASSES)] = 1
    if vessels is not None:
        free = (labels == 0) & np.isin(vessels, (2, 3, 6))
        lab[free] = vessels[free]
    return lab


def write_panorama_case(
    root: str | Path,
    name: str,
    ct: np.ndarray,
    labels: np.ndarray,
    affine: np.ndarray,
    *,
    vessels: np.ndarray | None = None,
    manual: bool = True,
) -> Path:
    """root/batch_1/<name>_0000.nii.gz + root/panorama_labels/{manual,automatic}_labels/<name>.nii.gz."""
    root = Path(root)
    (root / "batch_1").mkdir(parents=True, exist_ok=True)
    nib.save(nifti(ct, affine), root / "batch_1" / f"{name}_0000.nii.gz")
    folder = root / "panorama_labels" / ("manual_labels" if manual else "automatic_labels")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.nii.gz"
    nib.save(nifti(panorama_labels(labels, vessels), affine), path)
    return path
