"""The lesion report: one JSON-able record per candidate and a summary per class and decision."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from eanno_contracts.labels import CLASS_NAMES, LESION_CLASSES

from .components import Candidate
from .decisions import DECISIONS, KEPT, REMOVED_OUTSIDE, Context, Outcome, volume_ratio_percent


def _finite(x: float | None) -> float | None:
    """JSON has no infinity: an undefined value (ratio over an empty pancreas) is null."""
    return None if x is None or not math.isfinite(x) else float(x)


def lesion_record(
    lesion_id: int, c: Candidate, o: Outcome, ctx: Context, affine: np.ndarray, voxel_ml: float
) -> dict[str, Any]:
    """One candidate's line of the report (`voxel_ml`: one voxel's volume in mL)."""
    # plain-Python 3x4 product: thousands of speckle records make numpy's per-call overhead count
    centroid_mm = [
        sum(a * v for a, v in zip(row[:3], c.centroid_voxel, strict=True)) + row[3]
        for row in affine[:3].tolist()
    ]
    limit = list(o.limit) if isinstance(o.limit, tuple) else o.limit
    new_class = c.class_id if o.new_class is None else o.new_class
    return {
        "id": lesion_id,
        "class": CLASS_NAMES[c.class_id],
        "class_id": c.class_id,
        "voxels": c.voxels,
        "volume_ml": c.voxels * voxel_ml,
        "hu_mean": c.hu_mean,
        "hu_min": c.hu_min,
        "hu_max": c.hu_max,
        "prob_max": c.prob_max,
        "centroid_voxel": [float(v) for v in c.centroid_voxel],
        "centroid_mm": centroid_mm,
        "bbox_voxel": {"min": list(c.bbox_min), "max": list(c.bbox_max)},
        "longest_diameter_mm": c.longest_diameter_mm,
        "volume_ratio_percent": _finite(volume_ratio_percent(c, ctx)),
        "touches_pancreas": c.touches_pancreas,
        "touches_duct": c.touches_duct,
        "decision": o.decision,
        "compared": None
        if o.value is None and limit is None
        else {"value": _finite(o.value), "limit": limit},
        "reason": o.reason,
        "new_class": CLASS_NAMES[new_class],
    }


def summarise(lesions: Sequence[dict[str, Any]], parenchyma_voxels: int, duct_voxels: int) -> dict[str, Any]:
    """Counts per decision and per class, the pancreas size, and notes on the special cases."""
    by_decision = dict.fromkeys(DECISIONS, 0)
    by_class = {CLASS_NAMES[c]: dict.fromkeys(DECISIONS, 0) for c in LESION_CLASSES}
    for lesion in lesions:
        by_decision[lesion["decision"]] += 1
        by_class[lesion["class"]][lesion["decision"]] += 1
    empty = parenchyma_voxels + duct_voxels == 0
    notes = []
    if not lesions:
        notes.append("no lesion candidates")
    if empty:
        notes.append("the pancreas (parenchyma and duct) is empty: every lesion candidate is outside it")
    return {
        "candidates": len(lesions),
        "kept": by_decision[KEPT],
        "removed": by_decision[REMOVED_OUTSIDE],
        "relabelled": len(lesions) - by_decision[KEPT] - by_decision[REMOVED_OUTSIDE],
        "by_decision": by_decision,
        "by_class": by_class,
        "pancreas_voxels": parenchyma_voxels,
        "duct_voxels": duct_voxels,
        "pancreas_empty": empty,
        "notes": notes,
    }
