"""Pure comparisons of two label maps on one grid: Dice, surface Dice, lesion components and their pairing.

Hand-written on numpy + scipy + cc3d because the client may not import the training package (where the
evaluation stream's matching lives) nor torch (MONAI's surface Dice).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cc3d
import numpy as np
from scipy import ndimage

from eanno_client.review_settings import ReviewSettings  # noqa: F401  (defined apart: --help must not load scipy)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Volume Dice of two boolean masks; 1.0 when both are empty (nothing to disagree on)."""
    total = np.count_nonzero(a) + np.count_nonzero(b)
    return 1.0 if total == 0 else 2.0 * np.count_nonzero(np.logical_and(a, b)) / total


def _crop_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both masks cut to the bounding box of their union, padded by one background voxel per side.

    Every surface voxel lies inside the box, so distances between surfaces are unchanged; the padding
    makes voxels on the array border count as surface, as they do uncropped (erosion's border is 0).
    """
    union = np.logical_or(a, b)
    idx = np.nonzero(union)
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in idx)
    return np.pad(a[box], 1), np.pad(b[box], 1)


def surface(mask: np.ndarray) -> np.ndarray:
    """The mask's boundary voxels: in the mask with a face neighbour outside it."""
    return np.logical_and(mask, ~ndimage.binary_erosion(mask, border_value=0))


def surface_distances(
    a: np.ndarray, b: np.ndarray, spacing: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Distances (mm) from each surface voxel of a to b's surface, and from b's to a's (both non-empty)."""
    a, b = _crop_pair(a.astype(bool), b.astype(bool))
    sa, sb = surface(a), surface(b)
    sampling = [float(s) for s in spacing]
    to_b = ndimage.distance_transform_edt(~sb, sampling=sampling)
    to_a = ndimage.distance_transform_edt(~sa, sampling=sampling)
    return to_b[sa], to_a[sb]


def surface_dice(a: np.ndarray, b: np.ndarray, spacing: Sequence[float], tolerance_mm: float) -> float:
    """Surface Dice at a tolerance: the share of both surfaces lying within tolerance_mm of the other.

    Surfaces are boundary voxels (each counts once, not weighted by area), distances between voxel
    centres in mm with the grid's spacing. Both empty -> 1.0; one empty -> 0.0.
    """
    has_a, has_b = bool(a.any()), bool(b.any())
    if not (has_a or has_b):
        return 1.0
    if not (has_a and has_b):
        return 0.0
    da, db = surface_distances(a, b, spacing)
    # a tiny slack so a distance equal to the tolerance counts despite float rounding of sqrt
    tol = tolerance_mm + 1e-6
    return float((np.count_nonzero(da <= tol) + np.count_nonzero(db <= tol)) / (da.size + db.size))


def components(mask: np.ndarray, connectivity: int) -> tuple[np.ndarray, int]:
    """Connected components of a boolean mask (labels 1..n, uint32) and n."""
    cc, n = cc3d.connected_components(mask.astype(np.uint8), connectivity=connectivity, return_N=True)
    return cc, int(n)


@dataclass
class Group:
    """Model and revised lesion components joined by overlap (one lesion, possibly split or merged)."""

    model: list[int] = field(default_factory=list)
    revised: list[int] = field(default_factory=list)


def pair_components(
    model_cc: np.ndarray, n_model: int, revised_cc: np.ndarray, n_revised: int
) -> list[Group]:
    """Groups of components connected through overlapping voxels (the overlap graph's components).

    One model lesion overlapping two revised ones (a split) or the reverse (a merge) is one group, so
    every voxel of a lesion is counted once. Groups are ordered by their first model, then revised, id.
    """
    both = np.logical_and(model_cc > 0, revised_cc > 0)
    pairs = (
        np.unique(np.stack([model_cc[both], revised_cc[both]]), axis=1) if both.any() else np.zeros((2, 0))
    )
    # union-find over nodes 0..n_model-1 (model) and n_model..n_model+n_revised-1 (revised)
    parent = list(range(n_model + n_revised))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for m, r in pairs.T.astype(int):
        ra, rb = find(m - 1), find(n_model + r - 1)
        if ra != rb:
            parent[rb] = ra
    groups: dict[int, Group] = {}
    for node in range(n_model + n_revised):
        g = groups.setdefault(find(node), Group())
        if node < n_model:
            g.model.append(node + 1)
        else:
            g.revised.append(node - n_model + 1)
    return sorted(
        groups.values(),
        key=lambda g: (g.model[0] if g.model else n_model + 1, g.revised[0] if g.revised else 0),
    )


def majority_class(labels: np.ndarray, mask: np.ndarray) -> int:
    """The most frequent label under the mask (lowest id on ties); 0 for an empty mask."""
    values = labels[mask]
    return int(np.bincount(values).argmax()) if values.size else 0


def slices_touched(changed: np.ndarray) -> list[int]:
    """Per axis, how many slices perpendicular to it hold at least one changed voxel."""
    return [
        int(np.any(changed, axis=tuple(o for o in range(changed.ndim) if o != a)).sum())
        for a in range(changed.ndim)
    ]
