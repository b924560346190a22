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


def check_shape(shape: Sequence[int], path: Path | str) -> tuple[int, int, int]:
    """The 3D shape (a trailing single 4th axis dropped); InputError for 2D, 4D or a zero-length axis."""
    dims = [int(n) for n in shape]
    if len(dims) == 4 and dims[3] == 1:
        dims = dims[:3]
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
        raise InputError(f"{path}: volume {list(shape)} needs {size / 2**30:.2f} GiB as int16, over the "
                         f"{limit / 2**30:.2f} GiB gRPC message limit; crop or resample it first")


def checked_hu(values: np.ndarray, path: Path | str) -> np.ndarray:
    """values as int16 HU after checking shape, size and that every voxel is finite."""
    check_shape(values.shape, path)
    check_request_size(values.shape, path)
    if values.ndim == 4:
        values = values[..., 0]
    if np.issubdtype(values.dtype, np.floating):
        bad = ~np.isfinite(values)
        if bad.any():
            n_nan, n_inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
            raise InputError(f"{path}: {n_nan} NaN and {n_inf} infinite voxel values; a CT volume holds "
                             "finite HU only")
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
        return (f"intensities {lo}..{hi} with no negative value look like MRI or raw PET/scanner values, "
                "not CT in HU (air is -1000 HU)")
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
