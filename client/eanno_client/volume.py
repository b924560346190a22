"""A volume as read from disk: HU voxels in the file's own voxel order and its RAS+ affine."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from eanno_contracts.errors import EannoError, MissingDependency


class InputError(EannoError, ValueError):
    """An input the client cannot read; the message names the file and the problem."""


class MissingExtra(MissingDependency, InputError):
    """A reader or writer needs a package of the client's `all` extra that is not installed (exit 5)."""


@dataclass
class Volume:
    """int16 HU voxels (i, j, k) on the input grid, the 4x4 voxel -> world (RAS+ mm) affine and provenance."""

    data: np.ndarray
    affine: np.ndarray
    source: Path
    kind: str  # "nifti", "itk" (MHA/NRRD) or "dicom"
    note: str = ""  # what was chosen while reading (e.g. which DICOM series), for the user
    series_uid: str | None = None
    datasets: list[Any] = field(default_factory=list, repr=False)  # DICOM slices in k order (for DICOM-SEG)

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size in mm along i, j, k (column norms of the affine)."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)


def to_int16_hu(values: np.ndarray) -> np.ndarray:
    """Round HU values to int16, clipping to the int16 range (CT never needs more); int16 passes as is."""
    if values.dtype == np.int16:
        return values
    info = np.iinfo(np.int16)
    if np.issubdtype(values.dtype, np.integer):
        return np.clip(values, info.min, info.max).astype(np.int16)
    return np.clip(np.rint(values), info.min, info.max).astype(np.int16)
