"""`refine`: the paper's post-processing, steps 0-4, from a label map or class probabilities."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from .components import Measure, iter_components, label_components, measure
from .decisions import Context, decide
from .errors import InputError
from .inputs import check_affine, check_ct, check_labels, check_probs, labels_from_probs
from .labels import DUCT, PANCREAS
from .report import lesion_record, summarise
from .rules import CONNECTIVITIES, Rules

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefineResult:
    """Refined labels, the removed/relabelled candidates with their original class, and the report."""

    labels: np.ndarray  # uint8, the CT's shape
    removed: np.ndarray  # uint8, original class of every removed or relabelled candidate, 0 elsewhere
    report: dict[str, Any]


def refine(
    ct_hu: np.ndarray,
    labels: np.ndarray | None = None,
    probs: np.ndarray | None = None,
    *,
    theta: float | None = None,
    affine: np.ndarray | None = None,
    rules: Rules | None = None,
    connectivity: int | None = None,
) -> RefineResult:
    """Apply steps 0-4 to a 6-class label map or to (6, *ct.shape) probabilities; inputs are not modified."""
    rules = rules if rules is not None else Rules.defaults()
    connectivity = rules.connectivity if connectivity is None else connectivity
    if connectivity not in CONNECTIVITIES:
        raise InputError(f"connectivity must be 6, 18 or 26, got {connectivity!r}")
    ct = check_ct(ct_hu)
    affine = check_affine(affine)
    if (labels is None) == (probs is None):
        raise InputError("give exactly one of labels (a 6-class label map) or probs (6-class probabilities)")
    if labels is not None:
        theta_used = None
        lab = check_labels(labels, ct.shape)
        p = None
    else:
        theta_used = rules.theta if theta is None else _check_theta(theta)
        p = check_probs(probs, ct.shape)  # type: ignore[arg-type]
        lab = labels_from_probs(p, theta_used)

    parenchyma = int(np.count_nonzero(lab == PANCREAS))
    duct_voxels = int(np.count_nonzero(lab == DUCT))
    ctx = Context(rules=rules, parenchyma_voxels=parenchyma)
    how = Measure(
        hu_clip=rules.hu_clip,
        structure=ndimage.generate_binary_structure(3, {6: 1, 18: 2, 26: 3}[connectivity]),
        dilation=rules.pancreas_dilation_voxels,
        linear=affine[:3, :3],
        any_pancreas=parenchyma + duct_voxels > 0,
    )
    cc, n = label_components(lab, connectivity)
    # Rules read `lab` (the pancreas before any relabelling); decisions are written to `out`.
    out = lab.copy()
    removed = np.zeros_like(lab)
    lesions: list[dict[str, Any]] = []
    # Decisions only read the candidate and the pancreas *before* relabelling, so each component is
    # decided and written as it is measured: one pass over the components, none over voxels.
    for k, box, grown in iter_components(cc, n, lab, rules.pancreas_dilation_voxels):
        measured = measure(k, box, grown, cc, lab, ct, p, how)
        if measured is None:
            continue
        candidate, mask = measured
        outcome = decide(candidate, ctx)
        if outcome.new_class is not None:
            out[grown][mask] = outcome.new_class
            removed[grown][mask] = candidate.class_id
        lesions.append(lesion_record(len(lesions) + 1, candidate, outcome, ctx, affine))
    summary = summarise(lesions, parenchyma, duct_voxels)
    log.info(
        "refine: %d candidates, %d kept, %d removed, %d relabelled",
        len(lesions),
        summary["kept"],
        summary["removed"],
        summary["relabelled"],
    )
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    report = {
        "input": "labels" if labels is not None else "probs",
        "theta": theta_used,
        "connectivity": connectivity,
        "shape": [int(s) for s in ct.shape],
        "spacing_mm": [float(s) for s in spacing],
        "voxel_volume_ml": abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0,
        "lesions": lesions,
        "summary": summary,
        "rules": {**rules.to_dict(), "connectivity": connectivity},
    }
    return RefineResult(labels=out, removed=removed, report=report)


def _check_theta(theta: Any) -> float:
    """theta as a float in (0, 1]."""
    try:
        value = float(theta)
    except (TypeError, ValueError):
        raise InputError(f"theta must be a number in (0, 1], got {theta!r}") from None
    if not 0.0 < value <= 1.0:
        raise InputError(f"theta must be in (0, 1], got {theta!r}")
    return value
