"""The same post-processing written plainly with scipy.ndimage: the benchmark's baseline.

Written the way one writes it first, with scipy alone: `ndimage.label` per lesion class, the pancreas
and the duct dilated over the whole volume, `ndimage.find_objects` and per-component statistics in each
component's box, float argmax for probabilities. (Whole-volume `ndimage.mean/maximum(labels=...)` was
tried first and took ~90 s here, mostly argsort: too slow to be a fair baseline.) It must give exactly
the outputs of `eanno_postproc.refine` (the benchmark and tests/postproc assert it).
"""

from __future__ import annotations

import numpy as np
from eanno_contracts.labels import LESION_KEYS
from eanno_contracts.meta import DEFAULT_THETA
from scipy import ndimage

LESIONS = LESION_KEYS  # lesion class id -> rules file key
RANK = {6: 1, 18: 2, 26: 3}


def baseline_refine(
    ct: np.ndarray,
    labels: np.ndarray | None = None,
    probs: np.ndarray | None = None,
    theta: float = DEFAULT_THETA,
    rules: dict | None = None,
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]]]:
    """(refined labels, removed map, [(class id, decision)] per component) from labels or probs."""
    from eanno_postproc import Rules  # only for the default limits, so both read the same numbers

    r = rules if rules is not None else Rules.defaults().to_dict()
    if probs is not None:
        lesion_p = probs[3:6].astype(np.float64)
        lab = np.argmax(probs[:3].astype(np.float64), axis=0).astype(np.uint8)
        candidate = lesion_p.max(axis=0) >= theta
        lab[candidate] = (np.argmax(lesion_p, axis=0) + 3).astype(np.uint8)[candidate]
    elif labels is not None:
        lab = labels.astype(np.uint8)
    else:
        raise ValueError("baseline_refine needs labels or probs")
    structure = ndimage.generate_binary_structure(3, RANK[r["connectivity"]])
    pancreas = ndimage.binary_dilation(
        (lab == 1) | (lab == 2), structure=structure, iterations=r["pancreas_dilation_voxels"]
    )
    duct = ndimage.binary_dilation(lab == 2, structure=structure)
    hu = np.clip(ct.astype(np.float64), *r["hu_clip"])
    parenchyma = int(np.sum(lab == 1))
    out = lab.copy()
    removed = np.zeros_like(lab)
    decisions: list[tuple[int, str]] = []
    for c, key in LESIONS.items():
        comp, n = ndimage.label(lab == c, structure=structure)
        lo, hi = r["hu_window"][key]
        for k, box in enumerate(ndimage.find_objects(comp), start=1):
            mask = comp[box] == k
            size = int(mask.sum())
            ratio = 100.0 * size / parenchyma if parenchyma else np.inf
            mean = float(hu[box][mask].mean())
            if not pancreas[box][mask].any():
                decision, to = "removed_outside_pancreas", 0
            elif ratio > r["volume_ratio_limit"][key]:
                decision, to = "relabelled_volume_ratio", 1
            elif key in r["duct_classes"] and duct[box][mask].any():
                decision, to = "relabelled_duct", 1
            elif not lo <= mean <= hi:
                decision, to = "relabelled_contrast", 1
            else:
                decision, to = "kept", c
            out[box][mask] = to
            if decision != "kept":
                removed[box][mask] = c
            decisions.append((c, decision))
    return out, removed, decisions
