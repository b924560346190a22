"""`refine`: the paper's post-processing, steps 0-4, from a label map or class probabilities."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from eanno_contracts.labels import DUCT, PANCREAS
from scipy import ndimage

from .components import Candidate, Measure, grow_box, label_components, locate, measure
from .decisions import Context, Outcome, decide
from .errors import InputError
from .inputs import check_affine, check_ct, check_labels, check_probs, labels_from_probs
from .report import lesion_record, summarise
from .rules import CONNECTIVITIES, Rules
from .voxels import VoxelGroup, diameters, figures, neighbour_offsets, touching

log = logging.getLogger(__name__)
# Components of up to this many voxels are measured together from their voxel list (voxels.py);
# larger ones one by one in their own boxes (components.py).
SMALL_VOXELS = 256


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
    rules: Rules | Mapping[str, Any] | None = None,
    connectivity: int | None = None,
) -> RefineResult:
    """Apply steps 0-4 to a 6-class label map or to (6, *ct.shape) probabilities; inputs are not modified.

    `rules`: Rules, a mapping of overrides of the defaults (e.g. a server request's JSON), or None.
    """
    if rules is None:
        rules = Rules.defaults()
    elif not isinstance(rules, Rules):
        rules = Rules.from_dict(rules)  # RulesError (a ValueError) names a bad key
    connectivity = rules.connectivity if connectivity is None else connectivity
    if connectivity not in CONNECTIVITIES:
        raise InputError(f"connectivity must be 6, 18 or 26, got {connectivity!r}")
    ct = check_ct(ct_hu)
    affine = check_affine(affine)
    if (labels is None) == (probs is None):
        raise InputError("give exactly one of labels (a 6-class label map) or probs (6-class probabilities)")
    if labels is not None:
        theta_used = None
        lab = np.ascontiguousarray(check_labels(labels, ct.shape))  # flat indexing below needs C order
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
    group, boxes = locate(cc, n, lab, SMALL_VOXELS)
    # Rules read `lab` (the pancreas before any relabelling); decisions are written to `out`.
    # Decisions only read the candidate and that pancreas, so each is written as soon as it is made.
    out = lab.copy()
    removed = np.zeros(lab.shape, dtype=np.uint8)  # calloc: pages stay untouched where nothing is removed
    decided: list[tuple[int, Candidate, Outcome]] = []
    if group is not None:
        decided += _small_components(group, lab, ct, p, how, ctx, out, removed)
    for k, box in boxes:
        grown = grow_box(box, rules.pancreas_dilation_voxels, lab.shape)
        measured = measure(k, box, grown, cc, lab, ct, p, how)
        if measured is None:
            continue
        candidate, mask = measured
        outcome = decide(candidate, ctx)
        if outcome.new_class is not None:
            out[grown][mask] = outcome.new_class
            removed[grown][mask] = candidate.class_id
        decided.append((k, candidate, outcome))
    decided.sort(key=lambda d: d[0])  # raster order of each component's first voxel, whichever path
    voxel_ml = abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0
    lesions = [lesion_record(i, c, o, ctx, affine, voxel_ml) for i, (_, c, o) in enumerate(decided, start=1)]
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
        "voxel_volume_ml": voxel_ml,
        "lesions": lesions,
        "summary": summary,
        "rules": {**rules.to_dict(), "connectivity": connectivity, "theta": theta_used or rules.theta},
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


def _small_components(
    group: VoxelGroup,
    lab: np.ndarray,
    ct: np.ndarray,
    p: np.ndarray | None,
    how: Measure,
    ctx: Context,
    out: np.ndarray,
    removed: np.ndarray,
) -> list[tuple[int, Candidate, Outcome]]:
    """Measure, decide and write the small components together (see voxels.py)."""
    fig = figures(group, lab, ct, p, how.hu_clip)
    if how.any_pancreas:
        near = touching(
            group, lab, neighbour_offsets(how.structure, how.dilation), np.array([PANCREAS, DUCT])
        )
        duct = touching(group, lab, neighbour_offsets(how.structure, 1), np.array([DUCT]))
    else:
        near = duct = np.zeros(len(group.sizes), dtype=bool)
    diameter = diameters(group, how.linear)
    decided = []
    new_class = fig["class_id"].copy()
    for i, k in enumerate(group.ids):  # per component (not voxel): build the record, ask the rules
        c = Candidate(
            class_id=int(fig["class_id"][i]),
            voxels=int(group.sizes[i]),
            hu_mean=float(fig["hu_mean"][i]),
            hu_min=float(fig["hu_min"][i]),
            hu_max=float(fig["hu_max"][i]),
            prob_max=None if p is None else float(fig["prob_max"][i]),
            centroid_voxel=tuple(float(v) for v in fig["centroid"][i]),  # type: ignore[arg-type]
            bbox_min=tuple(int(v) for v in group.bbox_min[i]),  # type: ignore[arg-type]
            bbox_max=tuple(int(v) for v in group.bbox_max[i]),  # type: ignore[arg-type]
            longest_diameter_mm=float(diameter[i]),
            touches_pancreas=bool(near[i]),
            touches_duct=bool(duct[i]),
        )
        outcome = decide(c, ctx)
        if outcome.new_class is not None:
            new_class[i] = outcome.new_class
        decided.append((int(k), c, outcome))
    per_voxel_new = np.repeat(new_class, group.sizes)
    per_voxel_old = np.repeat(fig["class_id"], group.sizes)
    changed = per_voxel_new != per_voxel_old
    where = tuple(c[changed] for c in group.coords)
    out[where] = per_voxel_new[changed]
    removed[where] = per_voxel_old[changed]
    return decided
