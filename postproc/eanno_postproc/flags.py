"""Whole-scan flags: short reasons why a case deserves distrust (DESIGN.md, "flags"); empty when none.

Pure numpy/scipy on whatever grid it is given (the input grid, or the model grid of the sliding window):
every measure is in mm or mL from the spacing, and the volume is in the canonical (RAS) array order of
CONTRACTS.md (axis 0 towards the patient's right, 1 anterior, 2 superior).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from eanno_contracts.labels import BACKGROUND
from scipy import ndimage

from .rules import OrganLimits, Rules

# Larger volumes are subsampled (every k-th voxel along the finest axes) first: the flags are plausibility
# checks in mL and mm, and a full-size 512 x 512 x 300 scan would otherwise cost seconds.
MAX_VOXELS = 4_000_000
BONE_HU = 350.0  # cortical bone; above contrast-filled vessels of the portal-venous phase
SPINE_SMOOTH_MM = 10.0  # about a vertebral body's cortex ring: its centre becomes the densest point
SPINE_MIN_SHARE = 0.05  # the densest point holds bone on at least this share of slices, after smoothing
SMOOTH_MM = 3.0  # enough to average a phantom's noise into its tissue's spike on any grid up to 3 mm


def phantom_only(meta: Mapping[str, Any] | None) -> bool:
    """Whether a model's META says it was trained on synthetic phantoms only (train.phantom_only)."""
    train = (meta or {}).get("train") or {}
    if "phantom_only" in train:
        return bool(train["phantom_only"])
    return bool(train.get("phantoms")) and not train.get("data")  # models written before the key existed


def peak_share(ct: np.ndarray, spacing: Sequence[float]) -> float | None:
    """Share of the body's soft-tissue histogram in narrow peaks (0-1); None when there is no soft tissue.

    A phantom is painted from tissues of one HU each plus noise: smoothed over 3 mm (Gaussian sigma), its
    soft tissue piles up in narrow spikes (0.20-0.41 on 10 phantoms at their native spacing and resampled
    to 2, 2.5 and 3 mm). Real anatomy has texture, partial volume and gradients, so its histogram is
    broad (0.05-0.06 on a real abdominal CT at the same four spacings).
    """
    (sub,), sp = _coarse((ct,), spacing)
    sub = np.clip(sub.astype(np.float32), -1000, 1000)
    smooth = ndimage.gaussian_filter(sub, [max(0.5, SMOOTH_MM / s) for s in sp])
    soft = smooth[(smooth > -150) & (smooth < 250)]
    if soft.size < 1000:
        return None
    hist = np.histogram(soft, bins=400, range=(-150, 250))[0].astype(np.float64)
    base = ndimage.uniform_filter1d(hist, 31, mode="nearest")  # what a broad distribution looks like here
    return float(np.maximum(hist - base, 0).sum() / hist.sum())


def _coarse(arrays: Sequence[np.ndarray], spacing: Sequence[float]) -> tuple[list[np.ndarray], list[float]]:
    """Strided views of the arrays with at most MAX_VOXELS voxels (the finest axis thinned first), and their spacing."""
    step = [1, 1, 1]
    while np.prod([-(-n // k) for n, k in zip(arrays[0].shape, step, strict=True)]) > MAX_VOXELS:
        a = int(np.argmin([s * k for s, k in zip(spacing, step, strict=True)]))
        step[a] += 1
    view = tuple(slice(None, None, k) for k in step)
    return [a[view] for a in arrays], [float(s) * k for s, k in zip(spacing, step, strict=True)]


def spine_centre(ct: np.ndarray, spacing: Sequence[float]) -> np.ndarray | None:
    """Centre (mm, axes 0 and 1) of the vertebral column: where cortical bone lies in the same place on
    the most slices (ribs run obliquely and move from slice to slice); None when no bone is in view."""
    bone = (ct > BONE_HU).mean(axis=2, dtype=np.float32)  # per (axis 0, axis 1): share of slices with bone
    density = ndimage.gaussian_filter(bone, [SPINE_SMOOTH_MM / s for s in spacing[:2]])
    if density.max() < SPINE_MIN_SHARE:
        return None
    i0, i1 = np.unravel_index(int(np.argmax(density)), density.shape)
    return np.array([i0 * spacing[0], i1 * spacing[1]], dtype=np.float64)


def organ_measures(
    labels: np.ndarray, ct: np.ndarray, spacing: Sequence[float], piece_min_ml: float
) -> dict[str, Any]:
    """What the flags check of an organ map (every non-background label): volume_ml, pieces (of at least
    piece_min_ml), and its centre's mm in front of and to the patient's left of the spine's (None without
    a spine or an organ). Also what `eanno-calibrate rules` learns the limits from."""
    organ = labels != BACKGROUND  # parenchyma, duct and lesions: the whole organ
    voxel_ml = float(np.prod(spacing)) / 1000.0
    volume = float(np.count_nonzero(organ)) * voxel_ml
    out: dict[str, Any] = {
        "volume_ml": volume,
        "pieces": 0,
        "anterior_of_spine_mm": None,
        "left_of_spine_mm": None,
    }
    if not volume:
        return out
    cc, _ = ndimage.label(organ, structure=np.ones((3, 3, 3), bool))
    sizes = np.bincount(cc.ravel())[1:] * voxel_ml
    out["pieces"] = int(np.count_nonzero(sizes >= piece_min_ml))
    spine = spine_centre(ct, spacing)
    if spine is not None:
        centre = np.array(ndimage.center_of_mass(organ))[:2] * np.asarray(spacing[:2])
        out["anterior_of_spine_mm"] = float(centre[1] - spine[1])
        out["left_of_spine_mm"] = float(spine[0] - centre[0])  # axis 0 grows towards the patient's right
    return out


def organ_flags(
    labels: np.ndarray, ct: np.ndarray, spacing: Sequence[float], limits: OrganLimits
) -> list[str]:
    """Flags about the pancreas the model drew: none in view, implausible volume, pieces or position."""
    m = organ_measures(labels, ct, spacing, limits.piece_min_ml)
    volume = m["volume_ml"]
    if volume < limits.in_view_min_ml:
        return [f"no pancreas in view ({volume:.1f} mL found)"]
    flags = []
    lo, hi = limits.pancreas_ml
    if not lo <= volume <= hi:
        flags.append(f"implausible pancreas volume {volume:.0f} mL (expected {lo:g}-{hi:g})")
    if m["pieces"] > limits.max_pieces:
        flags.append(f"implausible pancreas in {m['pieces']} pieces (expected at most {limits.max_pieces})")
    if m["anterior_of_spine_mm"] is None:
        flags.append("no spine in view: pancreas position not checked")
        return flags
    for key, what in (("anterior_of_spine_mm", "in front of"), ("left_of_spine_mm", "left of")):
        lo, hi = getattr(limits, key)
        if not lo <= m[key] <= hi:
            flags.append(
                f"implausible pancreas position: {m[key]:.0f} mm {what} the spine (expected {lo:g}-{hi:g})"
            )
    return flags


def scan_flags(
    ct: np.ndarray,
    labels: np.ndarray,
    spacing: Sequence[float],
    rules: Rules | None = None,
    meta: Mapping[str, Any] | None = None,
) -> list[str]:
    """Every flag of one scan: CT (HU) and the model's label map on one grid (canonical order, `spacing` mm).

    `meta`: the model's META; a phantom-only model on a scan that does not look like a phantom is flagged.
    """
    if ct.shape != labels.shape:
        raise ValueError(f"CT {ct.shape} and labels {labels.shape} must share one grid")
    (ct, labels), spacing = _coarse((ct, labels), spacing)
    limits = (rules or Rules.defaults()).organ
    flags = []
    if phantom_only(meta):
        share = peak_share(ct, spacing)
        if share is None or share < limits.phantom_peak_share:
            figure = (
                "no soft tissue"
                if share is None
                else f"tissue texture {share:.2f} < {limits.phantom_peak_share:g}"
            )
            flags.append(f"phantom-only model on a scan that is not a phantom ({figure})")
    return flags + organ_flags(labels, ct, spacing, limits)
