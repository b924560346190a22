"""Longest diameter of a component in world millimetres, exactly and cheaply.

The longest diameter is the largest distance between two voxel centres of the component, in mm after
the affine (so anisotropic and oblique grids are measured correctly). The farthest pair of a point set
are vertices of its convex hull (an affine map keeps that true), and a voxel whose two neighbours along
any one axis are both in the component is their midpoint, hence never a hull vertex. So: keep the voxels
that end their line along every axis (for a box only its 8 corners, for a ball a thin shell), map them
to mm, keep their convex hull's vertices (scipy's Qhull), and compare all pairs of those (typically tens
to a few hundred points). Small sets skip the hull.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, QhullError

BRUTE_FORCE_POINTS = 64  # below this, all pairs are cheaper than building a hull
_PAIR_CHUNK = 1024


def hull_candidates(mask: np.ndarray) -> np.ndarray:
    """Voxels of `mask` that are not the midpoint of two mask neighbours along any axis."""
    p = np.pad(mask, 1)
    c = (slice(1, -1),) * 3
    out = mask.copy()
    for axis in range(3):
        before = list(c)
        after = list(c)
        before[axis], after[axis] = slice(None, -2), slice(2, None)
        out &= ~(p[tuple(before)] & p[tuple(after)])
    return out


def longest_diameter_mm(mask: np.ndarray, linear: np.ndarray) -> float:
    """Largest centre-to-centre distance (mm) between voxels of `mask`; `linear` = affine[:3, :3]."""
    points = np.argwhere(hull_candidates(mask)).astype(np.float64) @ np.asarray(linear, dtype=np.float64).T
    if len(points) < 2:
        return 0.0
    if len(points) > BRUTE_FORCE_POINTS:
        try:
            # QJ joggles away flat (single-slice) and collinear sets instead of failing on them;
            # the vertices are still indices of the original points.
            points = points[ConvexHull(points, qhull_options="QJ").vertices]
        except (QhullError, ValueError):
            pass  # all pairs of the surface points: slower, still exact
    return _max_pairwise(points)


def _max_pairwise(points: np.ndarray) -> float:
    best = 0.0
    for i0 in range(0, len(points), _PAIR_CHUNK):  # chunks of rows bound the memory of the distance block
        block = points[i0 : i0 + _PAIR_CHUNK]
        d2 = ((block[:, None, :] - points[None, i0:, :]) ** 2).sum(axis=-1)
        best = max(best, float(d2.max()))
    return float(np.sqrt(best))
