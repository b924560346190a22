"""Small lesion components measured all at once from their voxel list (a sensitive model's speckle).

A model run at theta = 0.003 can leave thousands of one-to-few-voxel candidates; measuring each in its
own box would cost ~0.5 ms of Python per candidate. Here every figure is a ufunc.reduceat over runs of
one coordinate list sorted by component, and "touches" gathers the labels at each neighbour offset.
Only the longest diameter loops over components, on a handful of points each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .geometry import longest_diameter_mm, max_pairwise_mm

# Up to this many voxels a component's diameter is taken over all its voxels' pairs directly.
PAIRWISE_VOXELS = 48


@dataclass(frozen=True)
class VoxelGroup:
    """Voxels of several components, sorted by component (`sizes` voxels each, in order)."""

    coords: tuple[np.ndarray, np.ndarray, np.ndarray]
    ids: np.ndarray  # the components' labels in the component map
    sizes: np.ndarray
    bbox_min: np.ndarray  # (components, 3)
    bbox_max: np.ndarray  # (components, 3), inclusive

    @property
    def starts(self) -> np.ndarray:
        """Index of each component's first voxel in `coords`."""
        return np.r_[0, np.cumsum(self.sizes)[:-1]]


def neighbour_offsets(structure: np.ndarray, steps: int) -> np.ndarray:
    """(m, 3) voxel offsets reachable in 1..`steps` moves of `structure` (its own centre excluded)."""
    size = 2 * steps + 1
    seed = np.zeros((size,) * 3, dtype=bool)
    seed[(steps,) * 3] = True
    reach = ndimage.binary_dilation(seed, structure=structure, iterations=steps)
    reach[(steps,) * 3] = False
    return np.argwhere(reach) - steps


def touching(group: VoxelGroup, lab: np.ndarray, offsets: np.ndarray, what: np.ndarray) -> np.ndarray:
    """Per component: does any voxel have a neighbour (at `offsets`) whose class is in `what`?"""
    lut = np.zeros(256, dtype=bool)
    lut[what] = True
    hit = np.zeros(len(group.coords[0]), dtype=bool)
    shape = np.array(lab.shape)
    for off in offsets:  # tens of offsets, each one vectorised gather over all the voxels
        nb = [c + o for c, o in zip(group.coords, off, strict=True)]
        inside = np.ones_like(hit)
        for a in range(3):
            inside &= (nb[a] >= 0) & (nb[a] < shape[a])
        idx = tuple(np.clip(x, 0, s - 1) for x, s in zip(nb, shape, strict=True))
        hit |= inside & lut[lab[idx]]
    return np.logical_or.reduceat(hit, group.starts)


def figures(
    group: VoxelGroup, lab: np.ndarray, ct: np.ndarray, probs: np.ndarray | None, hu_clip: tuple[float, float]
) -> dict[str, np.ndarray]:
    """Per-component class, HU mean/min/max, max probability and centroid, as arrays."""
    starts, sizes = group.starts, group.sizes
    class_id = lab[tuple(c[starts] for c in group.coords)]
    work = np.float64 if ct.dtype == np.float64 else np.float32
    hu = np.clip(ct[group.coords].astype(work), hu_clip[0], hu_clip[1])
    out = {
        "class_id": class_id,
        "hu_mean": np.add.reduceat(hu.astype(np.float64), starts) / sizes,
        "hu_min": np.minimum.reduceat(hu, starts),
        "hu_max": np.maximum.reduceat(hu, starts),
        "centroid": np.stack([np.add.reduceat(c, starts) / sizes for c in group.coords], axis=1),
    }
    if probs is not None:
        at = (
            np.repeat(class_id, sizes),
            *group.coords,
        )  # named: mypy misreads a starred subscript before 3.11
        p = probs[at]
        out["prob_max"] = np.maximum.reduceat(p, starts)
    return out


def diameters(group: VoxelGroup, linear: np.ndarray) -> np.ndarray:
    """Longest diameter (mm) per component: all pairs for small ones, the box path above PAIRWISE_VOXELS."""
    result = np.zeros(len(group.sizes))
    points = np.stack(group.coords, axis=1)
    for i, (s, n) in enumerate(zip(group.starts, group.sizes, strict=True)):
        if n < 2:
            continue  # one voxel: 0 mm
        own = points[s : s + n]
        if n <= PAIRWISE_VOXELS:
            result[i] = max_pairwise_mm(own.astype(np.float64) @ linear.T)
        else:
            lo = group.bbox_min[i]
            mask = np.zeros(tuple(group.bbox_max[i] - lo + 1), dtype=bool)
            mask[tuple((own - lo).T)] = True
            result[i] = longest_diameter_mm(mask, linear)
    return result
