"""What a radiologist changed in the model's labels: per class, per lesion, edit effort, the model's errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import nibabel as nib
import numpy as np

from eanno_client.classes import CLASS_NAMES, LESION_IDS
from eanno_client.review_metrics import (
    Group,
    ReviewSettings,
    components,
    dice,
    majority_class,
    pair_components,
    slices_touched,
    surface_dice,
)

# The model's error types counted per case and per batch (client/README.md, "Review").
ERROR_TYPES = ("missed", "restored", "false_positive_kept", "reclassified", "boundary", "removed_confirmed")
AXIS_NAMES = {"R": "sagittal", "L": "sagittal", "A": "coronal", "P": "coronal", "S": "axial", "I": "axial"}


def _r(x: float, digits: int = 4) -> float:
    return round(float(x), digits)


def class_changes(
    model: np.ndarray,
    revised: np.ndarray,
    spacing: Sequence[float],
    voxel_ml: float,
    settings: ReviewSettings,
) -> dict[str, dict[str, Any]]:
    """Per class 1-5: voxels and mL on both sides, voxels added / deleted, Dice and surface Dice."""
    out: dict[str, dict[str, Any]] = {}
    for c in range(1, len(CLASS_NAMES)):
        m, r = model == c, revised == c
        nm, nr = int(m.sum()), int(r.sum())
        if nm == 0 and nr == 0:
            continue
        out[CLASS_NAMES[c]] = {
            "model_voxels": nm,
            "revised_voxels": nr,
            "model_ml": _r(nm * voxel_ml),
            "revised_ml": _r(nr * voxel_ml),
            "volume_change_ml": _r((nr - nm) * voxel_ml),
            "added_voxels": int(np.logical_and(r, ~m).sum()),
            "deleted_voxels": int(np.logical_and(m, ~r).sum()),
            "dice": _r(dice(m, r)),
            "surface_dice": _r(surface_dice(m, r, spacing, settings.tolerance_mm)),
        }
    return out


def _lesion_record(
    g: Group,
    model: np.ndarray,
    revised: np.ndarray,
    mcc: np.ndarray,
    rcc: np.ndarray,
    removed: np.ndarray | None,
    spacing: Sequence[float],
    voxel_ml: float,
    settings: ReviewSettings,
) -> dict[str, Any]:
    """One lesion group: its kind (added, deleted, matched), classes, volumes and shape agreement."""
    m = np.isin(mcc, g.model) if g.model else np.zeros(model.shape, bool)
    r = np.isin(rcc, g.revised) if g.revised else np.zeros(model.shape, bool)
    nm, nr = int(m.sum()), int(r.sum())
    where = r if nr else m
    rec: dict[str, Any] = {
        "model_class": CLASS_NAMES[majority_class(model, m)] if nm else None,
        "revised_class": CLASS_NAMES[majority_class(revised, r)] if nr else None,
        "model_voxels": nm,
        "revised_voxels": nr,
        "model_ml": _r(nm * voxel_ml),
        "revised_ml": _r(nr * voxel_ml),
        "centroid_voxel": [_r(v, 1) for v in np.argwhere(where).mean(axis=0)],
        "changes": [],
    }
    if nm and nr:
        rec["kind"] = "matched"
        rec["volume_change_ml"] = _r((nr - nm) * voxel_ml)
        rec["volume_change_fraction"] = _r((nr - nm) / nm)
        rec["dice"] = _r(dice(m, r))
        rec["surface_dice"] = _r(surface_dice(m, r, spacing, settings.tolerance_mm))
        changes = rec["changes"]
        if rec["model_class"] != rec["revised_class"]:
            changes.append("reclassified")
        if abs(nr - nm) > settings.resize_fraction * nm:
            changes.append("resized")
        if rec["surface_dice"] < settings.reshape_below:
            changes.append("reshaped")
        if len(g.revised) > 1:
            changes.append("split")
        if len(g.model) > 1:
            changes.append("merged")
        rec["error"] = (
            "reclassified"
            if "reclassified" in changes
            else "boundary"
            if {"resized", "reshaped"} & set(changes)
            else None
        )
    elif nr:
        restored = removed is not None and bool(np.any(removed[r] > 0))
        rec["kind"] = "added"
        rec["error"] = "restored" if restored else "missed"
        if restored and removed is not None:  # restored implies removed; said again for the type checker
            rec["restored_from_class"] = CLASS_NAMES[majority_class(removed, r & (removed > 0))]
    else:
        rec["kind"] = "deleted"
        rec["error"] = "false_positive_kept"
    return rec


def lesion_changes(
    model: np.ndarray,
    revised: np.ndarray,
    removed: np.ndarray | None,
    spacing: Sequence[float],
    voxel_ml: float,
    settings: ReviewSettings,
) -> list[dict[str, Any]]:
    """Every lesion (components of labels 3-5 together, so a class change is one lesion) on either side."""
    mcc, nm = components(np.isin(model, LESION_IDS), settings.connectivity)
    rcc, nr = components(np.isin(revised, LESION_IDS), settings.connectivity)
    records = [
        _lesion_record(g, model, revised, mcc, rcc, removed, spacing, voxel_ml, settings)
        for g in pair_components(mcc, nm, rcc, nr)
    ]
    for i, rec in enumerate(records, start=1):
        rec["id"] = i
    return records


def removed_confirmed(revised: np.ndarray, removed: np.ndarray | None, connectivity: int) -> int:
    """Candidates post-processing removed that the radiologist left out too (the rules were right)."""
    if removed is None or not removed.any():
        return 0
    cc, n = components(removed > 0, connectivity)
    hit = np.unique(cc[np.isin(revised, LESION_IDS) & (cc > 0)])
    return n - int(hit.size)


def edit_effort(
    model: np.ndarray,
    revised: np.ndarray,
    affine: np.ndarray,
    voxel_ml: float,
    full_shape: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Voxels changed (any class) and slices touched along each axis, axes named by orientation.

    full_shape: the whole grid's shape when model/revised are a crop of it holding every labelled voxel.
    """
    changed = model != revised
    n = int(np.count_nonzero(changed))
    touched = slices_touched(changed)
    codes = nib.aff2axcodes(affine)
    shape = list(full_shape or model.shape)
    return {
        "voxels_changed": n,
        "ml_changed": _r(n * voxel_ml),
        "fraction_changed": _r(n / float(np.prod(shape)), 6),
        "slices_touched": touched,
        "slices_touched_by_plane": {AXIS_NAMES[c]: t for c, t in zip(codes, touched, strict=True)},
        "slices": shape,
    }


def _labelled_box(
    model: np.ndarray, revised: np.ndarray, removed: np.ndarray | None
) -> tuple[tuple[slice, ...], list[int]]:
    """The bounding box of every labelled voxel of the three maps (one voxel when all are empty)."""
    any_label = (model > 0) | (revised > 0)
    if removed is not None:
        any_label |= removed > 0
    box: list[slice] = []
    for axis in range(any_label.ndim):
        hit = np.flatnonzero(np.any(any_label, axis=tuple(a for a in range(any_label.ndim) if a != axis)))
        box.append(slice(int(hit[0]), int(hit[-1]) + 1) if hit.size else slice(0, 1))
    return tuple(box), [b.start for b in box]


def compare(
    model: np.ndarray,
    revised: np.ndarray,
    affine: np.ndarray,
    removed: np.ndarray | None = None,
    settings: ReviewSettings | None = None,
) -> dict[str, Any]:
    """The whole review of one case: classes, lesions, edit effort and the model's error counts."""
    settings = settings or ReviewSettings()
    spacing = [float(s) for s in np.linalg.norm(affine[:3, :3], axis=0)]
    voxel_ml = abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0
    full_shape = model.shape
    # Every figure depends only on where either map is labelled: cut both to that box (a CT is mostly
    # background, so this is what makes a 512 x 512 x 300 case take about a second instead of twenty).
    box, offset = _labelled_box(model, revised, removed)
    model, revised = model[box], revised[box]
    removed = None if removed is None else removed[box]
    lesions = lesion_changes(model, revised, removed, spacing, voxel_ml, settings)
    for rec in lesions:
        rec["centroid_voxel"] = [_r(c + o, 1) for c, o in zip(rec["centroid_voxel"], offset, strict=True)]
    errors = dict.fromkeys(ERROR_TYPES, 0)
    for rec in lesions:
        if rec["error"]:
            errors[rec["error"]] += 1
    errors["removed_confirmed"] = removed_confirmed(revised, removed, settings.connectivity)
    counts = {k: sum(1 for x in lesions if x["kind"] == k) for k in ("matched", "added", "deleted")}
    counts["unchanged"] = sum(1 for x in lesions if x["kind"] == "matched" and not x["changes"])
    for change in ("resized", "reshaped", "reclassified", "split", "merged"):
        counts[change] = sum(1 for x in lesions if change in x["changes"])
    return {
        "spacing_mm": spacing,
        "settings": {
            "tolerance_mm": settings.tolerance_mm,
            "resize_fraction": settings.resize_fraction,
            "reshape_below": settings.reshape_below,
            "connectivity": settings.connectivity,
        },
        "classes": class_changes(model, revised, spacing, voxel_ml, settings),
        "lesions": lesions,
        "lesion_counts": counts,
        "errors": errors,
        "effort": edit_effort(model, revised, affine, voxel_ml, full_shape),
        "removed_candidates_read": removed is not None,
    }
