"""Longest diameter of a component in world millimetres, exactly and cheaply.

The longest diameter is the largest distance between two voxel centres of the component, in mm after
the affine (so anisotropic and oblique grids are measured correctly). Exact, in three cheap steps:
1. A voxel whose two neighbours along any one axis are both in the component is their midpoint, so it
   cannot end the longest chord: keep only voxels that end their line along every axis (a box keeps
   its 8 corners, a ball a thin shell).
2. A lower bound L from two farthest-point sweeps (exact for most shapes). With c the centre of the
   points' box and R the largest distance to c, a point p is in a chord longer than L only if
   |p - c| + R >= L (triangle inequality): drop the others (for a ball nearly all).
3. All pairs of what is left (scipy's cdist, in chunks); above HULL_POINTS points their convex hull's
   vertices (scipy's Qhull) first, since the farthest pair are hull vertices.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.distance import cdist

HULL_POINTS = 512  # above this many points left, take their convex hull before comparing all pairs
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
    a = points[np.argmax(cdist(points[:1], points, "sqeuclidean"))]
    far = cdist(a[None], points, "sqeuclidean")[0]
    lower = float(np.sqrt(far.max()))
    b = points[np.argmax(far)]
    lower = max(lower, float(np.sqrt(cdist(b[None], points, "sqeuclidean").max())))
    centre = (points.min(axis=0) + points.max(axis=0)) / 2
    to_centre = np.sqrt(((points - centre) ** 2).sum(axis=1))
    points = points[to_centre + to_centre.max() >= lower - 1e-9]
    if len(points) > HULL_POINTS:
        points = _hull_vertices(points)
    return max(lower, max_pairwise_mm(points))


def _hull_vertices(points: np.ndarray) -> np.ndarray:
    for options in (None, "QJ"):  # QJ joggles flat or collinear sets instead of failing on them
        try:
            return points[ConvexHull(points, qhull_options=options).vertices]
        except (QhullError, ValueError):
            continue
    return points  # all pairs: slower, still exact


def max_pairwise_mm(points: np.ndarray) -> float:
    """Largest distance between two of `points` (n, 3), all pairs in chunks."""
    best = 0.0
    for i0 in range(0, len(points), _PAIR_CHUNK):  # row chunks bound the memory of the distance block
        best = max(best, float(cdist(points[i0 : i0 + _PAIR_CHUNK], points[i0:], "sqeuclidean").max()))
    return float(np.sqrt(best))
