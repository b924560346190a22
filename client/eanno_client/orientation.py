"""Reorient to nibabel's closest canonical (RAS+) for the server and back onto the input grid exactly."""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np
from nibabel import orientations as ornts

RAS = ornts.axcodes2ornt(("R", "A", "S"))


@dataclass(frozen=True)
class Canonical:
    """A volume in canonical order with its affine, and the orientation that maps input axes to it."""

    data: np.ndarray
    affine: np.ndarray
    ornt: np.ndarray  # nibabel orientation of the input grid (input axis -> RAS axis and flip)
    input_shape: tuple[int, ...]

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size in mm along the canonical axes."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)


def to_canonical(data: np.ndarray, affine: np.ndarray) -> Canonical:
    """The same voxels reordered/flipped to the closest RAS+ orientation, as nibabel.as_closest_canonical."""
    ornt = nib.io_orientation(affine)
    can = np.ascontiguousarray(ornts.apply_orientation(data, ornt))
    can_affine = affine @ ornts.inv_ornt_aff(ornt, data.shape)
    return Canonical(can, can_affine, ornt, tuple(data.shape))


def from_canonical(array: np.ndarray, canonical: Canonical) -> np.ndarray:
    """A canonical-order array (labels from the server) put back in the input's voxel order.

    The result is Fortran-ordered, the order NIfTI stores voxels in: nibabel then writes it without a
    strided transpose (about 15 times faster for a 512 x 512 x 300 label map).
    """
    if array.shape != canonical.data.shape:
        raise ValueError(f"array shape {list(array.shape)} is not the canonical shape {list(canonical.data.shape)}")
    back = np.asfortranarray(ornts.apply_orientation(array, ornts.ornt_transform(RAS, canonical.ornt)))
    assert back.shape == canonical.input_shape, (back.shape, canonical.input_shape)
    return back


def canonical_to_input_voxel(canonical: Canonical, input_affine: np.ndarray) -> np.ndarray:
    """The 4x4 that maps canonical voxel indices to input voxel indices (a signed permutation)."""
    return np.linalg.inv(input_affine) @ canonical.affine
