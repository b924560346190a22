"""Checks that an input is a CT volume the server can take, before anything is converted or sent.

Pure functions on arrays and shapes, so each check is testable without files (and the size check without
allocating the volume: it needs only the shape from a header).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eanno_client.volume import InputError, to_int16_hu

# gRPC's ceiling for one message (connection.MAX_MESSAGE_BYTES); the request carries the int16 volume
# plus a few hundred bytes of spacing, affine and framing.
GRPC_LIMIT_BYTES = 2**31 - 1
REQUEST_OVERHEAD_BYTES = 64 * 1024
HU_BYTES = 2  # int16
# Intensity heuristics for "this is not CT in HU" (see not_ct_reason).
MRI_MIN_MAX = 1000  # no negative value at all and values this high: MRI (0..4000) or raw counts
PET_MAX = 100  # no negative value and nothing above this: PET (SUV), or an empty image
# A CT volume the model can look at: at least this many voxels along every axis (a lone slice or a
# handful of them cannot be annotated in 3D), and a field of view at least this wide in mm along every
# axis or the case is flagged: the pancreas (about 15 cm long) cannot be in view, so "0 lesions" would
# mean nothing.
MIN_VOXELS_PER_AXIS = 4
MIN_EXTENT_MM = 50.0
HU_RANGE = (-32768, 32767)  # int16: what the request carries


def check_voxel_type(values: np.ndarray, path: Path | str) -> None:
    """InputError in plain words for voxels that are not one grey value each (colour, vector, complex, mask)."""
    dtype = values.dtype
    if dtype.fields:
        names = ", ".join(dtype.fields)
        _refuse(
            path,
            f"a colour or vector image (each voxel holds {names}); expected a greyscale CT "
            "volume in HU: export the CT series itself, not a rendering or screenshot",
        )
    if np.issubdtype(dtype, np.complexfloating):
        _refuse(path, "complex-valued voxels (an MRI raw or phase image?); expected a CT volume in HU")
    if dtype == np.bool_:
        _refuse(path, "true/false voxels: a mask or label map, not a CT image")
    if not np.issubdtype(dtype, np.number):
        _refuse(path, f"voxels of type {dtype} are not numbers; expected a CT volume in HU")


def _refuse(path: Path | str, reason: str) -> None:
    raise InputError(f"{path}: {reason}")


def check_extent(shape: Sequence[int], spacing: Sequence[float], path: Path | str) -> str | None:
    """InputError for a volume too thin for the model; a flag (text) when its field of view is too small."""
    dims = [int(n) for n in shape]
    thin = [(axis, n) for axis, n in zip("ijk", dims, strict=True) if n < MIN_VOXELS_PER_AXIS]
    if thin:
        axis, n = thin[0]
        what = "a single slice" if n == 1 else f"only {n} voxels"
        raise InputError(
            f"{path}: {what} along {axis} (shape {dims}); the model annotates 3D volumes of at "
            f"least {MIN_VOXELS_PER_AXIS} voxels along each axis: give the whole series"
        )
    extent = [n * float(s) for n, s in zip(dims, spacing, strict=True)]
    small = [(axis, e) for axis, e in zip("ijk", extent, strict=True) if e < MIN_EXTENT_MM]
    if small:
        axis, e = small[0]
        return (
            f"flag: the volume covers only {e:.0f} mm along {axis} (under {MIN_EXTENT_MM:.0f} mm): the "
            "pancreas cannot be fully in view, so a count of 0 lesions means nothing here"
        )
    return None


def check_shape(shape: Sequence[int], path: Path | str) -> tuple[int, int, int]:
    """The 3D shape (a trailing single 4th axis dropped); InputError for 2D, 4D or a zero-length axis."""
    dims = [int(n) for n in shape]
    if len(dims) == 4 and dims[3] == 1:
        dims = dims[:3]
    if len(dims) in (4, 5) and dims[-1] in (3, 4) and len(dims) - dims.count(1) >= 4:
        raise InputError(
            f"{path}: a colour or vector image of shape {dims} ({dims[-1]} values per voxel); "
            "expected a greyscale CT volume in HU"
        )
    if len(dims) != 3:
        kind = "2D image" if len(dims) == 2 else f"{len(dims)}D image"
        raise InputError(f"{path}: a {kind} of shape {dims}; expected one 3D CT volume")
    if min(dims) < 1:
        raise InputError(f"{path}: zero-length axis in shape {dims}; the volume holds no voxels")
    return dims[0], dims[1], dims[2]


def request_bytes(shape: Sequence[int]) -> int:
    """Bytes of one annotate request for an int16 volume of this shape."""
    return int(np.prod([int(n) for n in shape], dtype=np.int64)) * HU_BYTES + REQUEST_OVERHEAD_BYTES


def check_request_size(shape: Sequence[int], path: Path | str, limit: int = GRPC_LIMIT_BYTES) -> None:
    """InputError when the int16 volume would not fit in one gRPC message (checked before reading voxels)."""
    size = request_bytes(shape)
    if size > limit:
        raise InputError(
            f"{path}: volume {list(shape)} needs {size / 2**30:.2f} GiB as int16, over the "
            f"{limit / 2**30:.2f} GiB gRPC message limit; crop or resample it first"
        )


def checked_hu(values: np.ndarray, path: Path | str) -> np.ndarray:
    """values as int16 HU after checking type, shape, size, that every voxel is finite and fits int16 HU."""
    check_voxel_type(values, path)
    check_shape(values.shape, path)
    check_request_size(values.shape, path)
    if values.ndim == 4:
        values = values[..., 0]
    if np.issubdtype(values.dtype, np.floating):
        bad = ~np.isfinite(values)
        if bad.any():
            n_nan, n_inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
            raise InputError(
                f"{path}: {n_nan} NaN and {n_inf} infinite voxel values; a CT volume holds finite HU only"
            )
    if values.dtype.itemsize > 2 or values.dtype == np.uint16:  # types that can hold values int16 cannot
        lo, hi = float(values.min()), float(values.max())
        if lo < HU_RANGE[0] or hi > HU_RANGE[1]:
            raise InputError(
                f"{path}: values from {lo:.6g} to {hi:.6g} do not fit CT's HU range (int16, "
                f"{HU_RANGE[0]}..{HU_RANGE[1]}): a wrong rescale slope/intercept, or not a CT image"
            )
    return to_int16_hu(values)


def not_ct_reason(hu: np.ndarray) -> str | None:
    """Why these intensities do not look like CT in HU, or None when they do.

    CT in HU has air (-1000) or fat (-100) somewhere, so negative values; MRI (0..4000) and PET (SUV 0..~50,
    or activity counts) never do. Deliberately loose: it only flags images with no negative value at all.
    """
    lo, hi = int(hu.min()), int(hu.max())
    if lo < 0:
        return None
    if hi >= MRI_MIN_MAX:
        return (
            f"intensities {lo}..{hi} with no negative value look like MRI or raw PET/scanner values, "
            "not CT in HU (air is -1000 HU)"
        )
    if hi < PET_MAX:
        return f"intensities {lo}..{hi} look like PET (SUV) or an empty image, not CT in HU"
    return None


def check_ct_like(hu: np.ndarray, path: Path | str, force: bool = False) -> str | None:
    """InputError when the volume does not look like CT (unless force); the warning text when forced."""
    reason = not_ct_reason(hu)
    if reason is None:
        return None
    if not force:
        raise InputError(f"{path}: {reason}; refusing to annotate (use --force if this really is CT)")
    return f"warning: {reason}; annotated anyway (--force)"
