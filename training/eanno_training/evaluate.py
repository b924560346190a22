"""Held-out evaluation: pancreas Dice, lesion sensitivity (per class, pooled) and FP per scan, before and
after the adaptive post-processing (DESIGN.md "Calibration and evaluation")."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from eanno_postproc import refine

from .evaluation.matching import LESION_CLASSES, HitRule, match_case


@dataclass(frozen=True)
class CaseScore:
    """One scan's counts."""

    dice: float
    gt_lesions: dict[int, int]  # class -> number of GT lesion components
    detected_before: dict[int, int]
    detected_after: dict[int, int]
    fp_before: int
    fp_after: int
    class_right_after: dict[int, int]  # detected lesions (after) whose predicted class is the true one


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two boolean masks (1.0 when both are empty)."""
    s = int(pred.sum()) + int(truth.sum())
    return 1.0 if s == 0 else 2.0 * int(np.logical_and(pred, truth).sum()) / s


def match_lesions(
    pred: np.ndarray, truth: np.ndarray, connectivity: int = 26
) -> tuple[dict[int, int], dict[int, int], int, dict[int, int]]:
    """GT lesions per class, how many a predicted lesion component overlaps, unmatched predictions, and
    detected lesions of the right class.

    The matching is evaluation.matching's (the one used by eanno-eval and eanno-calibrate), with its
    default hit rule: any overlap, any lesion class.
    """
    m = match_case(pred, truth, HitRule(), connectivity)
    return dict(m.gt), dict(m.hit), m.n_fp, dict(m.right)


def score_case(
    ct: np.ndarray, truth: np.ndarray, probs: np.ndarray, affine: np.ndarray, theta: float
) -> CaseScore:
    """Post-process one scan's probabilities and count its hits and false positives."""
    res = refine(ct, probs=probs, theta=theta, affine=affine)
    after = np.asarray(res.labels)
    # Before the rules: every candidate, i.e. the kept labels with the removed candidates put back.
    removed = np.asarray(res.removed)
    before = np.where(removed > 0, removed, after)
    total, hit_before, fp_before, _ = match_lesions(before, truth)
    _, hit_after, fp_after, right = match_lesions(after, truth)
    return CaseScore(dice(after > 0, truth > 0), total, hit_before, hit_after, fp_before, fp_after, right)


def summarise(scores: Iterable[CaseScore], theta: float) -> dict[str, Any]:
    """The evaluate JSON: pancreas_dice, lesion_sensitivity (per class + pooled, before/after), fp_per_scan."""
    scores = list(scores)
    n = len(scores)

    def sens(attr: str) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for c, name in LESION_CLASSES.items():
            t = sum(s.gt_lesions[c] for s in scores)
            out[name] = None if t == 0 else sum(getattr(s, attr)[c] for s in scores) / t
        t_all = sum(sum(s.gt_lesions.values()) for s in scores)
        out["pooled"] = None if t_all == 0 else sum(sum(getattr(s, attr).values()) for s in scores) / t_all
        return out

    after = sens("detected_after")
    # patient level (after post-processing): a scan is positive when any lesion region survives
    normal = [s for s in scores if not sum(s.gt_lesions.values())]
    diseased = [s for s in scores if sum(s.gt_lesions.values())]
    true_neg = sum(1 for s in normal if s.fp_after == 0)
    true_pos = sum(1 for s in diseased if sum(s.detected_after.values()) + s.fp_after > 0)
    detected = sum(sum(s.detected_after.values()) for s in scores)
    right = sum(sum(s.class_right_after.values()) for s in scores)
    return {
        "scans": n,
        "theta": theta,
        "pancreas_dice": float(np.mean([s.dice for s in scores])) if n else None,
        "gt_lesions": {name: sum(s.gt_lesions[c] for s in scores) for c, name in LESION_CLASSES.items()},
        "lesion_sensitivity": after,
        "lesion_sensitivity_before": sens("detected_before"),
        "fp_per_scan": {
            "before": sum(s.fp_before for s in scores) / n if n else None,
            "after": sum(s.fp_after for s in scores) / n if n else None,
        },
        "patient_specificity": true_neg / len(normal) if normal else None,
        "patient_sensitivity": true_pos / len(diseased) if diseased else None,
        "normal_scans": len(normal),
        "lesion_class_accuracy": right / detected if detected else None,
    }


def canonical(
    ct: np.ndarray, labels: np.ndarray, affine: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both arrays in nibabel's closest canonical (RAS+) order, with the canonical affine."""
    import nibabel as nib

    img = nib.as_closest_canonical(nib.Nifti1Image(ct, affine))
    lab = nib.as_closest_canonical(nib.Nifti1Image(labels, affine))
    return np.asarray(img.dataobj), np.asarray(lab.dataobj), img.affine


def _phantom_probs(ck: Any, n: int, seed: int, shape: Any, device: str | None, progress: bool):
    """Yield (ct, truth, probs, affine) in canonical order for n held-out phantoms."""
    import torch
    from tqdm import tqdm

    from .phantoms import generate_phantom, phantom_seeds
    from .predictor import Predictor

    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    predictor = Predictor(ck.build(dev), ck.meta)
    for s in tqdm(phantom_seeds(seed, n), desc="evaluate", unit="scan", disable=not progress):
        ph = generate_phantom(s, shape=shape)
        ct, truth, affine = canonical(ph.ct, ph.labels, ph.affine)
        probs = predictor.predict(ct, np.linalg.norm(affine[:3, :3], axis=0))
        yield ct, truth, probs, affine


def evaluate_phantoms(
    checkpoint: Any,
    n: int,
    seed: int,
    *,
    theta: float | None = None,
    shape: Any = None,
    device: str | None = None,
    progress: bool = False,
    sweep: Sequence[float] = (),
) -> dict[str, Any]:
    """Generate n held-out phantoms from `seed`, predict with the checkpoint, post-process and score.

    `sweep`: further thresholds scored on the same predictions (result["sweep"], one summary each).
    """
    from .checkpoint import load_checkpoint

    ck = load_checkpoint(checkpoint)
    th = float(ck.meta["theta"] if theta is None else theta)
    thetas = [th] + [float(t) for t in sweep if float(t) != th]
    scores: dict[float, list[CaseScore]] = {t: [] for t in thetas}
    for ct, truth, probs, affine in _phantom_probs(ck, n, seed, shape, device, progress):
        for t in thetas:
            scores[t].append(score_case(ct, truth, probs, affine, t))
    out = summarise(scores[th], th)
    if sweep:
        out["sweep"] = [summarise(scores[t], t) for t in sorted(thetas)]
    out["checkpoint"] = str(checkpoint) if checkpoint is not None else "shipped"
    out["seed"] = seed
    return out
