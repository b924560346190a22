"""Fast whole-volume I/O for the client's own time per case: gzip through ISA-L, reordering in slabs.

- NIfTI .nii.gz read and written through `isal.igzip` (the ISA-L library: the same gzip format, several
  times faster than zlib at the same level; nibabel's default writer level is 1, so is ours). The bytes
  inside the gzip stream are exactly what nibabel writes. Without isal installed, plain nibabel is used.
- Reordering a volume between NIfTI's Fortran order and the server's C order: numpy's whole-array
  copy walks the destination with a large stride (about 4x slower here for 512 x 512 x 300); copying
  slabs along the source's slowest axis keeps both sides in cache, and the slabs run on two threads.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np

try:
    from isal import igzip
except ImportError:  # optional: plain gzip (nibabel) then
    igzip = None

GZIP_LEVEL = 1  # nibabel's default for .nii.gz
# Slabs of this many planes of the source's slowest axis per copy: measured best of 4..64 (16 MB L2/L3).
SLAB_PLANES = 16
THREADS = 2


def reorder(src: np.ndarray, order: str) -> np.ndarray:
    """A copy of `src` (any strides) laid out in `order` ("C" or "F"), made slab by slab on two threads."""
    out = np.empty(src.shape, dtype=src.dtype, order=order)
    if src.ndim != 3 or src.size == 0:
        np.copyto(out, src)
        return out
    # The source's slowest axis: the one with the largest stride (ties: any).
    axis = int(np.argmax([abs(s) for s in src.strides]))
    n = src.shape[axis]

    def one(start: int) -> None:
        sl = [slice(None)] * 3
        sl[axis] = slice(start, min(start + SLAB_PLANES, n))
        np.copyto(out[tuple(sl)], src[tuple(sl)])

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(one, range(0, n, SLAB_PLANES)))  # list(): re-raises a slab's exception here
    return out


def load_nifti(path: Path, check: Callable[[nib.Nifti1Image], None]) -> tuple[nib.Nifti1Image, np.ndarray]:
    """(image, voxel data with scaling applied) of a NIfTI file; `check(img)` runs on the header before
    any voxel is read. Exceptions are nibabel's, zlib's or check's: the caller names the file."""
    name = str(path).lower()
    if igzip is not None and name.endswith(".nii.gz"):
        with igzip.open(path, "rb") as f:
            img = nib.Nifti1Image.from_stream(f)
            check(img)
            return img, np.asanyarray(img.dataobj)
    img = nib.load(str(path))
    check(img)
    return img, np.asanyarray(img.dataobj)


def write_nifti(path: Path, img: nib.Nifti1Image) -> None:
    """Write `img` to `path` (.nii.gz through ISA-L when installed, else nibabel)."""
    if igzip is not None and str(path).lower().endswith(".nii.gz"):
        with igzip.open(path, "wb", compresslevel=GZIP_LEVEL) as f:
            img.to_stream(f)
    else:
        nib.save(img, str(path))
