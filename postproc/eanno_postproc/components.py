"""Lesion components (connected-components-3d) and each candidate's measurements, cropped to its box.

Every measurement works inside the component's bounding box grown by the pancreas dilation, so the
cost follows the size of the lesions, not of the volume; the only whole-volume passes are the
labelling itself and `find_objects` (one C pass for every box at once).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cc3d
import numpy as np
from scipy import ndimage

from .geometry import longest_diameter_mm
from .labels import DUCT, LESION_CLASSES, PANCREAS

Slices = tuple[slice, slice, slice]
# Share of lesion voxels in the volume above which bounding boxes come from one find_objects pass.
DENSE_FRACTION = 0.02


@dataclass(frozen=True)
class Candidate:
    """One lesion component and what the rules and the report need to know about it."""

    class_id: int
    voxels: int
    hu_mean: float
    hu_min: float
    hu_max: float
    prob_max: float | None
    centroid_voxel: tuple[float, float, float]
    bbox_min: tuple[int, int, int]
    bbox_max: tuple[int, int, int]  # inclusive
    longest_diameter_mm: float
    touches_pancreas: bool
    touches_duct: bool


@dataclass(frozen=True)
class Measure:
    """What measuring needs besides the arrays: clip window, touch structure and radius, affine."""

    hu_clip: tuple[float, float]
    structure: np.ndarray
    dilation: int
    linear: np.ndarray  # affine[:3, :3]
    any_pancreas: bool  # False: every candidate is outside, no need to look


def label_components(lab: np.ndarray, connectivity: int) -> tuple[np.ndarray, int]:
    """Connected components of every class at once (cc3d keeps different labels apart)."""
    # Labelling the whole map (pancreas and duct included) is as fast as labelling a lesion-only copy
    # and saves building that copy; the non-lesion components are skipped when measuring.
    cc, n = cc3d.connected_components(lab, connectivity=connectivity, return_N=True)
    return cc, int(n)


def iter_components(
    cc: np.ndarray, n: int, lab: np.ndarray, grow: int
) -> Iterator[tuple[int, Slices, Slices]]:
    """(cc label, bounding box, box grown by `grow` voxels, clamped) for the lesion components.

    Non-lesion components may be listed too (dense path); `measure` skips them.
    """
    for k, box in _boxes(cc, n, lab):
        grown = tuple(
            slice(max(0, s.start - grow), min(size, s.stop + grow))
            for s, size in zip(box, cc.shape, strict=True)
        )
        yield k, box, grown  # type: ignore[misc]


def _boxes(cc: np.ndarray, n: int, lab: np.ndarray) -> list[tuple[int, Slices]]:
    """Bounding boxes of the components that hold lesion voxels."""
    lesion = lab >= min(LESION_CLASSES)
    count = int(np.count_nonzero(lesion))
    if count == 0:
        return []
    if count > DENSE_FRACTION * lab.size:
        # Many lesion voxels: one C pass over the labels beats gathering and sorting their coordinates.
        return [
            (k, box)
            for k, box in enumerate(ndimage.find_objects(cc, max_label=n), start=1)
            if box is not None
        ]
    # Few lesion voxels (the usual case): their flat indices cost ~20 ms on 512x512x300, where
    # find_objects over every voxel costs ~250 ms; boxes are then per-label min/max of a sorted list.
    flat = np.flatnonzero(lesion)
    ids = cc.reshape(-1)[flat]
    order = np.argsort(ids, kind="stable")
    ids, flat = ids[order], flat[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    coords = np.unravel_index(flat, lab.shape)
    lo = [np.minimum.reduceat(c, starts) for c in coords]
    hi = [np.maximum.reduceat(c, starts) for c in coords]
    return [
        (int(ids[s]), tuple(slice(int(lo[a][i]), int(hi[a][i]) + 1) for a in range(3)))  # type: ignore[misc]
        for i, s in enumerate(starts)
    ]


def measure(
    k: int,
    box: Slices,
    grown: Slices,
    cc: np.ndarray,
    lab: np.ndarray,
    ct: np.ndarray,
    probs: np.ndarray | None,
    how: Measure,
) -> tuple[Candidate, np.ndarray] | None:
    """Measure component `k` (None when it is not a lesion); also returns its mask inside `grown`."""
    mask = cc[grown] == k
    lab_crop = lab[grown]
    class_id = int(lab_crop.flat[int(mask.argmax())])
    if class_id not in LESION_CLASSES:
        return None
    voxels = int(np.count_nonzero(mask))
    touches_pancreas, touches_duct = _touches(mask, lab_crop, how)
    # float32 holds every clipped int16 HU exactly; mean accumulates in float64 without a float64 copy
    work = np.float64 if ct.dtype == np.float64 else np.float32
    hu = np.clip(ct[grown][mask].astype(work, copy=False), how.hu_clip[0], how.hu_clip[1])
    prob_max = None if probs is None else float(probs[class_id][grown][mask].max())
    offset = [g.start for g in grown]
    centroid = tuple(
        float(
            np.dot(mask.sum(axis=tuple(a for a in range(3) if a != axis)), np.arange(mask.shape[axis]))
            / voxels
        )
        + offset[axis]
        for axis in range(3)
    )
    inner = tuple(slice(b.start - g.start, b.stop - g.start) for b, g in zip(box, grown, strict=True))
    candidate = Candidate(
        class_id=class_id,
        voxels=voxels,
        hu_mean=float(hu.mean(dtype=np.float64)),
        hu_min=float(hu.min()),
        hu_max=float(hu.max()),
        prob_max=prob_max,
        centroid_voxel=centroid,  # type: ignore[arg-type]
        bbox_min=tuple(s.start for s in box),  # type: ignore[arg-type]
        bbox_max=tuple(s.stop - 1 for s in box),  # type: ignore[arg-type]
        longest_diameter_mm=longest_diameter_mm(mask[inner], how.linear),
        touches_pancreas=touches_pancreas,
        touches_duct=touches_duct,
    )
    return candidate, mask


def _touches(mask: np.ndarray, lab_crop: np.ndarray, how: Measure) -> tuple[bool, bool]:
    """(touches the pancreas dilated by `how.dilation`, touches the duct) under the connectivity."""
    if not how.any_pancreas:
        return False, False
    pancreas = (lab_crop == PANCREAS) | (lab_crop == DUCT)
    if not pancreas.any():  # most far-away candidates: no dilation needed
        return False, False
    grown1 = ndimage.binary_dilation(mask, structure=how.structure)
    duct = bool((grown1 & (lab_crop == DUCT)).any())
    grown = grown1 if how.dilation == 1 else ndimage.binary_dilation(mask, how.structure, how.dilation)
    return bool((grown & pancreas).any()), duct
