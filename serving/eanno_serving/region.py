"""Region first: where on the model grid the pancreas is, so full resolution is spent only there.

The rules only keep what touches the pancreas (DESIGN.md, rule 1), so the window finds, on the coarse
model grid, every place an input-grid voxel could become pancreas, duct or a lesion candidate, groups
those places into components, and takes the box around the components that hold the pancreas. Inside
that box the input-grid probabilities are computed exactly as the full-grid path computes them (same
resampling, bit for bit), and refine sees every full-resolution component that intersects the box whole,
with room for its dilation: so labels, removed map and report there equal the full-grid computation.

Why the bounds hold: an input voxel's probability is a convex combination of its cell's 8 model-grid
corners (trilinear, align_corners), so when it is >= theta (or pancreas/duct wins the argmax) at least one
corner is >= theta minus rounding (or has p1 / p2 >= p0 minus rounding). Two input voxels that are
neighbours, or within the rules' touch distance, have such corners within D model voxels; dilating the
corner mask by ceil(D / 2) joins them into one component. A component's input-grid extent is its model
box widened by one cell. Components not joined to the pancreas are rule-1 removals; they are reported
and drawn from the model grid (`outside_candidates`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cc3d
import numpy as np
from scipy import ndimage

Box = tuple[tuple[int, int, int], tuple[int, int, int]]  # (start, stop) on the input grid
# Relative slack on theta and absolute slack on p1 - p0 for the corner test: float32 interpolation
# rounds by a few ulps and the float16 store by 2**-11 at most; the slack only widens the box.
THETA_SLACK = 2.0**-8
ARGMAX_SLACK = 2e-3
PANCREAS, DUCT, FIRST_LESION = 1, 2, 3


@dataclass(frozen=True)
class Region:
    """The box on the input grid (start == stop: no pancreas) and the model-grid voxels outside it."""

    start: tuple[int, int, int]
    stop: tuple[int, int, int]
    outside: np.ndarray  # bool, model grid: lesion-candidate places of components left out of the box

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        """The box as slices of the input grid."""
        return tuple(slice(a, b) for a, b in zip(self.start, self.stop, strict=True))  # type: ignore[return-value]

    @property
    def empty(self) -> bool:
        """True when no voxel could be pancreas or duct: nothing to compute at full resolution."""
        return any(b <= a for a, b in zip(self.start, self.stop, strict=True))

    @property
    def shape(self) -> tuple[int, int, int]:
        """The box's shape (zeros when empty)."""
        return tuple(max(0, b - a) for a, b in zip(self.start, self.stop, strict=True))  # type: ignore[return-value]


def steps(model_shape: Sequence[int], input_shape: Sequence[int]) -> list[float]:
    """Model-grid index per input voxel along each axis (align_corners: (m - 1) / (n - 1))."""
    return [(m - 1) / (n - 1) if n > 1 else 0.0 for m, n in zip(model_shape, input_shape, strict=True)]


def _extent(lo: int, hi: int, m: int, n: int) -> tuple[int, int]:
    """Input indices [a, b] (inclusive) whose trilinear cell has a corner in model indices [lo, hi]."""
    if m <= 1 or n <= 1:
        return 0, n - 1
    s = (n - 1) / (m - 1)  # input voxels per model voxel
    return max(0, math.floor((lo - 1) * s)), min(n - 1, math.ceil((hi + 1) * s))


def find_region(probs: np.ndarray, input_shape: Sequence[int], theta: float, touch_voxels: int) -> Region:
    """The pancreas box on the input grid from model-grid probabilities (C, *model shape), float32.

    `probs` must be the very values the full-grid path resamples (after its float16 flush of tiny values).
    `touch_voxels`: the rules' pancreas dilation (rule 1), in input voxels.
    """
    model_shape = probs.shape[1:]
    n_in = tuple(int(n) for n in input_shape)
    lesion = (probs[FIRST_LESION:] >= np.float32(theta * (1 - THETA_SLACK))).any(axis=0)
    tol = np.float32(ARGMAX_SLACK)
    pancreas = (probs[PANCREAS] >= probs[0] - tol) | (probs[DUCT] >= probs[0] - tol)
    zeros = (0, 0, 0)
    if not pancreas.any():
        return Region(zeros, zeros, lesion)
    reach = math.ceil(max(touch_voxels, 1) * max(steps(model_shape, n_in))) + 1
    radius = max(1, math.ceil(reach / 2))
    grown = ndimage.maximum_filter(lesion | pancreas, size=2 * radius + 1, mode="constant", cval=0)
    cc, n = cc3d.connected_components(grown, connectivity=26, return_N=True)
    boxes = ndimage.find_objects(cc, max_label=n)
    extents = np.array(
        [[_extent(b[a].start, b[a].stop - 1, model_shape[a], n_in[a]) for a in range(3)] for b in boxes],
        dtype=np.int64,
    ).reshape(n, 3, 2)  # [component, axis, (first, last)]
    chosen = np.zeros(n + 1, dtype=bool)
    chosen[np.unique(cc[pancreas])] = True
    chosen[0] = False
    margin = touch_voxels + 1  # refine grows each candidate's box by the dilation: keep that inside
    while True:  # add every component whose extent meets the box, until none does (a few rounds)
        sel = extents[chosen[1:]]
        first = np.maximum(sel[:, :, 0].min(axis=0) - margin, 0)
        last = np.minimum(sel[:, :, 1].max(axis=0) + margin, np.array(n_in) - 1)
        meets = np.all((extents[:, :, 0] <= last) & (extents[:, :, 1] >= first), axis=1)
        if not (meets & ~chosen[1:]).any():
            break
        chosen[1:] |= meets
    outside = lesion & ~chosen[cc]
    return Region(tuple(int(v) for v in first), tuple(int(v) + 1 for v in last), outside)  # type: ignore[arg-type]


def nearest_blocks(
    coords: Sequence[np.ndarray], model_shape: Sequence[int], input_shape: Sequence[int]
) -> np.ndarray:
    """(k, 6) input-grid blocks [start0, stop0, start1, stop1, start2, stop2] of the input voxels whose
    nearest model voxel (rint of index x step) is each of the k model voxels at `coords`; may be empty."""
    cols = []
    for c, m, n, s in zip(coords, model_shape, input_shape, steps(model_shape, input_shape), strict=True):
        near = np.rint(np.arange(n) * s).astype(np.int64) if m > 1 else np.zeros(n, dtype=np.int64)
        starts = np.searchsorted(near, np.arange(m), side="left")
        stops = np.searchsorted(near, np.arange(m), side="right")
        cols += [starts[c], stops[c]]
    return np.stack(cols, axis=1).astype(np.int32) if cols and len(cols[0]) else np.zeros((0, 6), np.int32)
