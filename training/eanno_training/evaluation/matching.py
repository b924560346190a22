"""Lesion matching (DESIGN.md "Calibration and evaluation"): ground-truth and predicted lesion components,
a configurable hit rule, and per-scan counts of detected lesions and false-positive components."""

from __future__ import annotations

from dataclasses import dataclass, field

import cc3d
import numpy as np
from eanno_contracts.labels import lesion_names

LESION_CLASSES: dict[int, str] = lesion_names()  # lesion class id -> name (CONTRACTS.md "Labels")
CONNECTIVITIES = (6, 18, 26)


@dataclass(frozen=True)
class HitRule:
    """When a predicted lesion component counts as finding a ground-truth one.

    kind "overlap": any shared voxel (the paper's rule); kind "iou": intersection over union >= iou.
    class_aware: the predicted class must equal the true class (off by default: a lesion found with the
    wrong type is still found, which is what a reviewer needs).
    """

    kind: str = "overlap"
    iou: float = 0.0
    class_aware: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("overlap", "iou"):
            raise ValueError(f"hit rule must be 'overlap' or 'iou', got {self.kind!r}")
        if self.kind == "iou" and not 0.0 < self.iou <= 1.0:
            raise ValueError(f"IoU threshold must be in (0, 1], got {self.iou!r}")

    @classmethod
    def parse(cls, text: str, class_aware: bool = False) -> HitRule:
        """'overlap' or 'iou:0.3' (also 'iou>=0.3') -> a HitRule."""
        t = text.strip().lower().replace(">=", ":").replace("=", ":")
        if t == "overlap":
            return cls("overlap", 0.0, class_aware)
        if t.startswith("iou:"):
            try:
                return cls("iou", float(t[4:]), class_aware)
            except ValueError:
                pass
        raise ValueError(f"hit rule must be 'overlap' or 'iou:T' with 0 < T <= 1, got {text!r}")

    def describe(self) -> str:
        """Short text for reports: 'overlap' or 'iou>=0.3' (+ ', class-aware')."""
        base = "overlap" if self.kind == "overlap" else f"iou>={self.iou:g}"
        return base + (", class-aware" if self.class_aware else "")


@dataclass
class CaseMatch:
    """One scan's lesion counts: ground truth per class, detected per class, false positives per class."""

    gt: dict[int, int] = field(default_factory=lambda: {c: 0 for c in LESION_CLASSES})
    hit: dict[int, int] = field(default_factory=lambda: {c: 0 for c in LESION_CLASSES})
    fp: dict[int, int] = field(default_factory=lambda: {c: 0 for c in LESION_CLASSES})
    pred: dict[int, int] = field(default_factory=lambda: {c: 0 for c in LESION_CLASSES})
    # detected lesions whose class is right: that of the matching prediction sharing the most voxels
    right: dict[int, int] = field(default_factory=lambda: {c: 0 for c in LESION_CLASSES})
    # candidates overlapping no true lesion, by the post-processing decision on them (froc.sweep_case)
    fp_decisions: dict[str, int] = field(default_factory=dict)

    @property
    def n_gt(self) -> int:
        """Ground-truth lesions, all classes."""
        return sum(self.gt.values())

    @property
    def n_hit(self) -> int:
        """Detected ground-truth lesions, all classes."""
        return sum(self.hit.values())

    @property
    def n_fp(self) -> int:
        """False-positive components, all classes."""
        return sum(self.fp.values())

    @property
    def n_pred(self) -> int:
        """Predicted lesion components, all classes."""
        return sum(self.pred.values())


def components(labels: np.ndarray, connectivity: int = 26) -> tuple[np.ndarray, dict[int, int]]:
    """Connected components per lesion class in one id map (0 = none) and each id's class."""
    if connectivity not in CONNECTIVITIES:
        raise ValueError(f"connectivity must be 6, 18 or 26, got {connectivity}")
    ids = np.zeros(labels.shape, np.uint32)
    classes: dict[int, int] = {}
    offset = 0
    for c in LESION_CLASSES:
        mask = labels == c
        if not mask.any():
            continue
        cc, n = cc3d.connected_components(mask, connectivity=connectivity, return_N=True)
        ids[mask] = cc[mask].astype(np.uint32) + offset
        classes.update({offset + k: c for k in range(1, n + 1)})
        offset += n
    return ids, classes


def match_case(
    pred: np.ndarray, truth: np.ndarray, rule: HitRule | None = None, connectivity: int = 26
) -> CaseMatch:
    """Count detected ground-truth lesions and false-positive predicted components of one scan.

    A ground-truth component is detected when at least one predicted component satisfies the hit rule
    with it; a predicted component is a false positive when it satisfies the rule with no ground-truth
    component. So a lesion split into two predictions is one hit and no false positive; one prediction
    merging two lesions is two hits (under "overlap").
    """
    rule = rule or HitRule()
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground truth shape {truth.shape}")
    out = CaseMatch()
    gt_ids, gt_cls = components(truth, connectivity)
    pr_ids, pr_cls = components(pred, connectivity)
    for c in gt_cls.values():
        out.gt[c] += 1
    for c in pr_cls.values():
        out.pred[c] += 1
    both = (gt_ids > 0) & (pr_ids > 0)
    pairs: dict[tuple[int, int], int] = {}
    if both.any():
        # joint histogram of (gt id, pred id) over shared voxels: the intersections of every pair at once
        g, p = gt_ids[both].astype(np.int64), pr_ids[both].astype(np.int64)
        keys, counts = np.unique(g * (len(pr_cls) + 1) + p, return_counts=True)
        pairs = {
            (int(k // (len(pr_cls) + 1)), int(k % (len(pr_cls) + 1))): int(n)
            for k, n in zip(keys, counts, strict=True)
        }
    if rule.kind == "iou" and pairs:
        gt_size = np.bincount(gt_ids.ravel(), minlength=len(gt_cls) + 1)
        pr_size = np.bincount(pr_ids.ravel(), minlength=len(pr_cls) + 1)
    matched_gt: dict[int, tuple[int, int]] = {}  # gt id -> (largest overlap, its predicted class)
    matched_pr: set[int] = set()
    for (gi, pi), inter in pairs.items():
        if rule.class_aware and gt_cls[gi] != pr_cls[pi]:
            continue
        if rule.kind == "iou" and inter / (gt_size[gi] + pr_size[pi] - inter) < rule.iou:
            continue
        if inter > matched_gt.get(gi, (0, 0))[0]:
            matched_gt[gi] = (inter, pr_cls[pi])
        matched_pr.add(pi)
    for gi, (_, pc) in matched_gt.items():
        out.hit[gt_cls[gi]] += 1
        out.right[gt_cls[gi]] += int(pc == gt_cls[gi])
    for pi, c in pr_cls.items():
        if pi not in matched_pr:
            out.fp[c] += 1
    return out
