"""The sliding window of CONTRACTS.md in numpy: clip, resample, normalise, pad, tile, stitch, resample back.

The torch predictor of eanno_training is the reference; this is the same algorithm step by step so the
server's labels match the in-process ones, and the geometry (target shape, padding, tile starts, Gaussian
weights) is the one eanno_contracts implements for both. The network call is injected (a function or, in Triton, the
async BLS loop of the window model), so everything here is pure and testable without a server.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from eanno_contracts.geometry import gaussian_weights, pad_widths, target_shape, tile_starts
from eanno_contracts.meta import WindowSpec

from eanno_serving.cores import usable_cores
from eanno_serving.requests import check_spacing

Starts = tuple[int, int, int]
# Output voxels per slab of resample_linear: 4 MB of float32, measured best of 2^18..2^22 on a 32 MB L3.
_SLAB_VOXELS = 1 << 20
_FP16_NORMAL = np.float32(np.finfo(np.float16).tiny)  # 2**-14: float16's smallest normal number


def _lerp_axis(x: np.ndarray, n_out: int, axis: int, part: slice | None = None) -> np.ndarray:
    """Linear resampling of one axis with align_corners=True semantics (float32 out).

    `part`: only these output indices (same values as the full call's, bit for bit); the input is read
    only where they need it.
    """
    n_in = x.shape[axis]
    part = slice(0, n_out) if part is None else part
    if n_out == n_in:
        return (
            x
            if (part.start, part.stop) == (0, n_out)
            else np.take(x, np.arange(part.start, part.stop), axis=axis)
        )
    if n_in == 1:
        return np.repeat(x, part.stop - part.start, axis=axis)
    pos = (np.arange(n_out, dtype=np.float64) * ((n_in - 1) / max(n_out - 1, 1)))[part]
    lo = np.minimum(np.floor(pos).astype(np.intp), n_in - 2)
    shape = [1] * x.ndim
    shape[axis] = len(pos)
    w = (pos - lo).astype(np.float32).reshape(shape)
    a = np.take(x, lo, axis=axis)
    b = np.take(x, lo + 1, axis=axis)
    b -= a
    b *= w
    a += b
    return a


def _axis_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per output index along one axis: the two input neighbours and the weight of the upper one."""
    pos = np.arange(n_out, dtype=np.float64) * ((n_in - 1) / max(n_out - 1, 1))
    lo = np.minimum(np.floor(pos).astype(np.intp), max(n_in - 2, 0))
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (pos - lo).astype(np.float32)


def _store_fp16_normal(a: np.ndarray, out: np.ndarray) -> None:
    """Store finite float32 values in [0, 65504) into float16 `out`, values below 2**-14 as 0.

    The float16 bit patterns are made with integer ops, rounding to nearest with ties to even as numpy
    does (numpy 1.x converts to float16 one value at a time, 2x slower here). `a` is used as scratch.
    """
    u = a.view(np.uint32)
    odd = np.right_shift(u, 13)  # the lowest mantissa bit kept: ties round to even
    np.bitwise_and(odd, 1, out=odd)
    u += odd
    u += 0x0FFF
    np.right_shift(u, 13, out=u)  # sign, 8-bit exponent, 10-bit mantissa
    np.maximum(u, 112 << 10, out=u)
    u -= 112 << 10  # float32 -> float16 exponent bias
    np.putmask(u, u < 1 << 10, 0)  # below float16's normal range (exponent 0): flushed to 0
    np.copyto(out.view(np.uint16), u, casting="unsafe")


def resample_linear(
    x: np.ndarray,
    shape: Sequence[int],
    out: np.ndarray | None = None,
    threads: int | None = None,
    clip: tuple[float, float] | None = None,
    part: Sequence[slice] | None = None,
) -> np.ndarray:
    """Trilinear resampling of a 3D array to `shape`, align_corners=True (= scipy zoom order=1, grid_mode=False).

    `part` (slices of the output grid with explicit start and stop): only that box of the output is
    computed, bit for bit what the whole call would give there (region-first, eanno_serving.region).

    `x` may be any real dtype (an int16 CT is read as float32 slab by slab, never copied whole), and
    `clip` limits its values before interpolation (the window's HU clip).
    `out` (any float dtype, e.g. a float16 slice of the result) is written in place when given. Into
    float16, values of magnitude below its smallest normal number (6.1e-5) are written as 0: numpy
    converts float16 subnormals 2-3x slower, and for probabilities they carry nothing (no rule reads a
    value that small).
    Hand-written instead of scipy.ndimage.zoom (6x slower: 4.0 s vs 0.64 s for 164x164x120 -> 512x512x300
    in float32 on 2 cores) because the window's own time is mostly this call: 6 class maps upsampled to
    the input grid. Trilinear is separable, so each slab of output rows along axis 0 is made from the few
    input rows it needs (axes 1 and 2 first, then axis 0) and written straight into `out`: the
    temporaries stay a few MB (cache-sized, no full-size float32 copies, no separate float16 pass) and the
    slabs run on all cores (numpy releases the GIL). SlidingWindow.result is 5x faster than with three
    whole-volume passes (serving/benchmarks/bench_window_result.py).
    """
    x = np.asarray(x)
    shape = tuple(int(n) for n in shape)
    if x.ndim != 3 or len(shape) != 3 or min(shape) < 1 or min(x.shape) < 1:
        raise ValueError(f"resample_linear needs a 3D array and 3 sizes >= 1, got {x.shape} -> {shape}")
    part = tuple(slice(0, n) for n in shape) if part is None else tuple(part)
    if len(part) != 3 or any(not 0 <= p.start < p.stop <= n for p, n in zip(part, shape, strict=True)):
        raise ValueError(f"part {part} is not a non-empty box of the output grid {shape}")
    out_shape = tuple(p.stop - p.start for p in part)
    if out is None:
        out = np.empty(out_shape, dtype=np.float32)
    elif out.shape != out_shape:
        raise ValueError(f"out has shape {out.shape}, expected {out_shape}")
    flush = out.dtype == np.float16
    # Interpolation stays within the input's range, so one check on the (small) input decides whether
    # every output value is finite, >= 0 and float16-representable: then the 2x faster store applies.
    fast_fp16 = (
        flush
        and x.size > 0
        and np.issubdtype(x.dtype, np.floating)
        and clip is None
        and (bool(np.isfinite(x).all()) and float(x.min()) >= 0 and float(x.max()) < 65504)
    )
    lo, hi, w = (v[part[0]] for v in _axis_weights(x.shape[0], shape[0]))
    inner = sorted((1, 2), key=lambda a: shape[a] / x.shape[a])  # smallest growth first: smaller temporaries
    # Sized by the larger of an output row and an input row: downsampling reads bigger rows than it writes.
    rows_per_slab = max(1, _SLAB_VOXELS // max(out_shape[1] * out_shape[2], x.shape[1] * x.shape[2]))

    def slab(i0: int) -> None:
        i1 = min(i0 + rows_per_slab, out_shape[0])
        rows, pick = np.unique(np.concatenate([lo[i0:i1], hi[i0:i1]]), return_inverse=True)
        y = x[rows].astype(np.float32, copy=False)  # x[rows] is a copy already: safe to clip in place
        if clip is not None:
            np.clip(y, np.float32(clip[0]), np.float32(clip[1]), out=y)
        for axis in inner:
            y = _lerp_axis(y, shape[axis], axis, part[axis])
        a, b = y[pick[: i1 - i0]], y[pick[i1 - i0 :]]
        b -= a
        b *= w[i0:i1, None, None]
        a += b
        if fast_fp16:
            _store_fp16_normal(a, out[i0:i1])
        elif flush:
            np.putmask(a, np.abs(a) < _FP16_NORMAL, np.float32(0))  # negatives and NaN stay visible
            np.copyto(out[i0:i1], a, casting="same_kind")
        else:
            np.copyto(out[i0:i1], a, casting="same_kind")

    starts = range(0, out_shape[0], rows_per_slab)
    workers = min(len(starts), threads or usable_cores())
    if workers <= 1:
        for i0 in starts:
            slab(i0)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(slab, starts))  # list(): re-raises a slab's exception here
    return out


class SlidingWindow:
    """One volume's window state: the prepared model-grid image, and the stitched probabilities.

    Usage: for starts, batch in sw.batches(b): sw.add(starts, infer(batch)); then sw.result().
    Accumulation is float32 on the (coarse) model grid; only the final, full-size map may be float16.
    """

    def __init__(self, volume: np.ndarray, spacing: Sequence[float], spec: WindowSpec) -> None:
        if volume.ndim != 3 or min(volume.shape) < 1:
            raise ValueError(f"volume must be a non-empty 3D array, got shape {volume.shape}")
        self.spec = spec
        self.input_shape = tuple(int(n) for n in volume.shape)
        self.model_shape = target_shape(self.input_shape, check_spacing(spacing), spec.spacing)
        # Clipped while resampled, slab by slab: no float32 copy of the whole input volume is made.
        x = resample_linear(volume, self.model_shape, clip=spec.clip)
        self.hu = x.copy()  # clipped HU on the model grid: what candidates outside the region are measured on
        x -= np.float32(spec.mean)
        x /= np.float32(spec.std)
        air = (spec.clip[0] - spec.mean) / spec.std
        pads = pad_widths(self.model_shape, spec.patch_size)
        self.crop = tuple(slice(b, b + n) for (b, _), n in zip(pads, self.model_shape, strict=True))
        self.image = np.pad(x, pads, constant_values=np.float32(air)) if any(sum(p) for p in pads) else x
        s0, s1, s2 = (
            tile_starts(n, p, spec.step) for n, p in zip(self.image.shape, spec.patch_size, strict=True)
        )
        self.starts = list(itertools.product(s0, s1, s2))
        self.weight = gaussian_weights(spec.patch_size)
        self.acc = np.zeros((spec.num_classes, *self.image.shape), dtype=np.float32)
        self.wsum = np.zeros(self.image.shape, dtype=np.float32)

    def _window(self, start: Starts) -> tuple[slice, slice, slice]:
        return tuple(slice(s, s + p) for s, p in zip(start, self.spec.patch_size, strict=True))  # type: ignore[return-value]

    def batches(self, batch_size: int) -> Iterator[tuple[list[Starts], np.ndarray]]:
        """Yield (starts, float32 [B, 1, p0, p1, p2]) batches of at most batch_size patches."""
        for i in range(0, len(self.starts), batch_size):
            chunk = self.starts[i : i + batch_size]
            yield chunk, np.stack([self.image[self._window(s)] for s in chunk])[:, None]

    def add(self, starts: Sequence[Starts], probs: np.ndarray) -> None:
        """Accumulate the network's [B, C, p0, p1, p2] probabilities for the patches at `starts`."""
        expected = (len(starts), self.spec.num_classes, *self.spec.patch_size)
        if tuple(probs.shape) != expected:
            raise ValueError(f"segmenter returned probs of shape {tuple(probs.shape)}, expected {expected}")
        for s, p in zip(starts, probs, strict=True):
            win = self._window(s)
            every_class = (slice(None), *win)  # named: mypy misreads a starred subscript before 3.11
            self.acc[every_class] += p * self.weight
            self.wsum[win] += self.weight

    def coarse(self, dtype: type = np.float32) -> np.ndarray:
        """Stitched probabilities (C, *model shape), float32: the values `result(dtype)` resamples."""
        every_class = (slice(None), *self.crop)  # named: mypy misreads a starred subscript before 3.11
        probs = self.acc[every_class] / self.wsum[self.crop]
        if np.dtype(dtype) == np.float16:
            # Float16 stores nothing below 2**-14 exactly anyway; zeros keep the float32 arithmetic
            # of the resampling off denormal numbers (several times slower on x86).
            np.putmask(probs, np.abs(probs) < _FP16_NORMAL, np.float32(0))
        return probs

    def result(
        self, dtype: type = np.float32, part: Sequence[slice] | None = None, coarse: np.ndarray | None = None
    ) -> np.ndarray:
        """Stitched probabilities (C, *input shape) in `dtype`, resampled back to the input grid.

        `part`: only that box of the input grid (region-first); `coarse`: `self.coarse(dtype)` if made already.
        """
        return resample_classes(
            self.coarse(dtype) if coarse is None else coarse, self.input_shape, dtype, part
        )


def resample_classes(
    coarse: np.ndarray, shape: Sequence[int], dtype: type = np.float32, part: Sequence[slice] | None = None
) -> np.ndarray:
    """Each class map of `coarse` (C, *model shape) resampled to `shape` (only `part` of it), in `dtype`."""
    part = tuple(slice(0, n) for n in shape) if part is None else tuple(part)
    out = np.empty((coarse.shape[0], *(p.stop - p.start for p in part)), dtype=dtype)
    for c in range(coarse.shape[0]):
        resample_linear(coarse[c], shape, out=out[c], part=part)
    return out


def sliding_window(
    volume: np.ndarray,
    spacing: Sequence[float],
    spec: WindowSpec,
    infer: Any,
    batch_size: int = 4,
    dtype: type = np.float32,
) -> np.ndarray:
    """Run the whole window synchronously with infer(batch [B,1,p,p,p]) -> probs [B,C,p,p,p]."""
    sw = SlidingWindow(volume, spacing, spec)
    for starts, batch in sw.batches(batch_size):
        sw.add(starts, np.asarray(infer(batch), dtype=np.float32))
    return sw.result(dtype)
