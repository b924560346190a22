"""Input checks and step 0 (lesion candidates) for label-map and probability input.

Probabilities are compared through an unsigned-integer view of their bits: for non-negative IEEE
floats the bit patterns order exactly as the values do, so argmax and `p >= theta` run as integer
operations (numpy's float16 arithmetic converts every element and is ~15x slower). Negative values,
NaN and infinities all have bit patterns above that of 1.0, so one integer `max` checks them too.
"""

from __future__ import annotations

import numpy as np
from eanno_contracts.labels import N_CLASSES

from .errors import InputError

# |sum over classes - 1| allowed: float16 stores each probability to ~5e-4, six of them to ~3e-3.
SUM_TOLERANCE = 1e-2
# The sum check reads a regular sub-grid of at most this many voxels: a full float16 sum costs ~2 s on
# 512x512x300, and the errors it exists for (logits, channel-last order, per-class sigmoids) show everywhere.
SUM_CHECK_VOXELS = 1 << 20
# Slabs of the first volume axis processed at once in step 0: keeps temporaries small and in cache.
SLAB_VOXELS = 1 << 22
_UINT_OF = {np.dtype(np.float16): np.uint16, np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}


def check_ct(ct: np.ndarray) -> np.ndarray:
    """The CT as a 3D numeric array; finite where it is floating point."""
    ct = np.asarray(ct)
    if ct.ndim != 3:
        raise InputError(f"ct: expected a 3D volume, got {ct.ndim}D with shape {ct.shape}")
    if not (np.issubdtype(ct.dtype, np.integer) or np.issubdtype(ct.dtype, np.floating)):
        raise InputError(f"ct: expected integer or floating HU values, got dtype {ct.dtype}")
    if ct.size == 0:
        raise InputError(f"ct: the volume is empty (shape {ct.shape})")
    if np.issubdtype(ct.dtype, np.floating) and not np.isfinite(ct).all():
        raise InputError("ct: holds NaN or infinite values")
    return ct


def check_affine(affine: np.ndarray | None) -> np.ndarray:
    """A finite 4x4 voxel-to-mm affine with an invertible 3x3 part (None -> identity, 1 mm voxels)."""
    if affine is None:
        return np.eye(4)
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4):
        raise InputError(f"affine: expected a 4x4 matrix, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise InputError("affine: holds NaN or infinite values")
    if abs(np.linalg.det(a[:3, :3])) < 1e-12:
        raise InputError(f"affine: its 3x3 part is singular (zero voxel volume):\n{a}")
    return a


def check_labels(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The label map as uint8 with values 0-5 on the CT's grid (no copy when it already is uint8)."""
    lab = np.asarray(labels)
    if lab.ndim != 3:
        raise InputError(f"labels: expected a 3D label map, got {lab.ndim}D with shape {lab.shape}")
    if lab.shape != shape:
        raise InputError(f"labels: shape {lab.shape} does not match the CT's shape {shape}")
    if lab.dtype == np.bool_:
        return lab.view(np.uint8)
    if np.issubdtype(lab.dtype, np.floating):
        if not np.isfinite(lab).all() or not np.array_equal(lab, np.round(lab)):
            raise InputError(
                "labels: floating-point labels must be whole numbers 0-5 (got fractions, NaN or inf)"
            )
    elif not np.issubdtype(lab.dtype, np.integer):
        raise InputError(f"labels: expected integer class ids 0-5, got dtype {lab.dtype}")
    lo, hi = lab.min(), lab.max()
    if lo < 0 or hi >= N_CLASSES:
        bad = int(lo) if lo < 0 else int(hi)
        raise InputError(f"labels: values must be class ids 0-{N_CLASSES - 1}, found {bad}")
    return lab if lab.dtype == np.uint8 else lab.astype(np.uint8)


def check_probs(probs: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Class probabilities (6, *shape), float16/32/64, each in [0, 1], summing to ~1 over classes."""
    p = np.asarray(probs)
    if p.ndim != 4 or p.shape[0] != N_CLASSES:
        raise InputError(
            f"probs: expected shape (6, *ct.shape) = (6, {', '.join(map(str, shape))}), got {p.shape}"
        )
    if p.shape[1:] != shape:
        raise InputError(f"probs: volume shape {p.shape[1:]} does not match the CT's shape {shape}")
    if p.dtype not in _UINT_OF:
        raise InputError(f"probs: expected float16, float32 or float64, got dtype {p.dtype}")
    p = np.ascontiguousarray(p)
    # The sum is checked here on a sub-grid; each value's range (no NaN, inf, negative or > 1) is
    # checked in full by labels_from_probs on the slabs it reads anyway.
    step = max(1, round((p[0].size / SUM_CHECK_VOXELS) ** (1 / 3)))
    sample = p[:, ::step, ::step, ::step]
    worst = float(np.abs(sample.sum(axis=0, dtype=np.float32) - 1.0).max())
    if not worst <= SUM_TOLERANCE:
        raise InputError(
            _value_problem(sample)
            or f"probs: class probabilities must sum to 1 over axis 0 (off by up to {worst:.3g}); "
            "pass softmax probabilities with the class axis first"
        )
    return p


def _value_problem(p: np.ndarray) -> str | None:
    """What is wrong with the values of `p`, if anything (slow: for error messages only)."""
    if np.isnan(p).any():
        return "probs: holds NaN values"
    if np.isinf(p).any():
        return "probs: holds infinite values"
    if (p < 0).any():
        return f"probs: holds negative values (min {float(p.min()):g}); pass softmax probabilities"
    if (p > 1 + SUM_TOLERANCE).any():
        return f"probs: holds values above 1 (max {float(p.max()):g}); pass softmax probabilities"
    return None


def theta_bits(theta: float, dtype: np.dtype) -> np.generic:
    """The bit pattern of the smallest `dtype` value >= theta, so `bits >= it` is exactly `p >= theta`."""
    t = np.array(theta, dtype=dtype)
    if float(t) < theta:
        t = np.nextafter(t, np.array(np.inf, dtype=dtype))
    return t.view(_UINT_OF[np.dtype(dtype)])[()]


def labels_from_probs(p: np.ndarray, theta: float) -> np.ndarray:
    """Step 0: lesion candidate where a lesion class has p >= theta (highest wins), else argmax of 0-2."""
    uint = _UINT_OF[p.dtype]
    u = p.view(uint)
    t = theta_bits(theta, p.dtype)
    # Negative values, NaN and infinities all have bit patterns above 1.0's: one max checks them all.
    one_bits = int(np.array(1.0 + SUM_TOLERANCE, p.dtype).view(uint))
    highest = 0
    out = np.empty(p.shape[1:], dtype=np.uint8)
    slab = max(1, SLAB_VOXELS // max(1, p[0, 0].size))
    for i0 in range(0, p.shape[1], slab):  # loop over slabs of slices, not voxels
        s = slice(i0, i0 + slab)
        base, best_base = _argmax3(u[0, s], u[1, s], u[2, s])
        lesion, best = _argmax3(u[3, s], u[4, s], u[5, s])
        highest = max(highest, int(best_base.max()), int(best.max()))
        lesion += 3
        np.copyto(base, lesion, where=best >= t)
        out[s] = base
    if highest > one_bits:
        problem = _value_problem(p)
        if problem:
            raise InputError(problem)
        return labels_from_probs(np.abs(p), theta)  # only -0.0 left (sign bit set): same as +0.0
    return out


def _argmax3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index 0-2 of the largest of three arrays, that largest); ties go to the earlier, as argmax."""
    best = np.maximum(a, b)
    idx = np.greater(b, a).view(np.uint8)
    later = np.greater(c, best)
    np.maximum(best, c, out=best)
    np.copyto(idx, np.uint8(2), where=later)
    return idx, best
