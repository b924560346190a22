"""Held-out evaluation: pancreas Dice, lesion sensitivity (per class, pooled) and FP per scan, before and
after the adaptive post-processing (DESIGN.md "Calibration and evaluation")."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import cc3d
import numpy as np
from eanno_postproc import refine

LESION_CLASSES = {3: "pancreatic_pdac", 4: "pancreatic_cyst", 5: "pancreatic_pnet"}


@dataclass(frozen=True)
class CaseScore:
    """One scan's counts."""

    dice: float
    gt_lesions: dict[int, int]  # class -> number of GT lesion components
    detected_before: dict[int, int]
    detected_after: dict[int, int]
    fp_before: int
    fp_after: int


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two boolean masks (1.0 when both are empty)."""
    s = int(pred.sum()) + int(truth.sum())
    return 1.0 if s == 0 else 2.0 * int(np.logical_and(pred, truth).sum()) / s


def lesion_components(labels: np.ndarray, connectivity: int = 26) -> list[tuple[int, np.ndarray]]:
    """(class, boolean mask) for every connected component of each lesion class."""
    out = []
    for c in LESION_CLASSES:
        cc, n = cc3d.connected_components(labels == c, connectivity=connectivity, return_N=True)
        if n:
            for region in cc3d.each(cc, binary=True, in_place=True):
                out.append((c, region[1].copy()))
    return out


def match_lesions(pred: np.ndarray, truth: np.ndarray, connectivity: int = 26) -> tuple[dict[int, int], dict[int, int], int]:
    """GT lesions per class, how many a predicted lesion component overlaps, and unmatched predictions."""
    gt = lesion_components(truth, connectivity)
    pred_lesion = np.isin(pred, list(LESION_CLASSES))
    truth_lesion = np.isin(truth, list(LESION_CLASSES))
    total = {c: 0 for c in LESION_CLASSES}
    hit = {c: 0 for c in LESION_CLASSES}
    for c, m in gt:
        total[c] += 1
        hit[c] += int(np.logical_and(m, pred_lesion).any())
    fp = sum(1 for _, m in lesion_components(pred, connectivity) if not np.logical_and(m, truth_lesion).any())
    return total, hit, fp


def score_case(ct: np.ndarray, truth: np.ndarray, probs: np.ndarray, affine: np.ndarray, theta: float) -> CaseScore:
    """Post-process one scan's probabilities and count its hits and false positives."""
    res = refine(ct, probs=probs, theta=theta, affine=affine)
    after = np.asarray(res.labels)
    # Before the rules: every candidate, i.e. the kept labels with the removed candidates put back.
    removed = np.asarray(res.removed)
    before = np.where(removed > 0, removed, after)
    total, hit_before, fp_before = match_lesions(before, truth)
    _, hit_after, fp_after = match_lesions(after, truth)
    return CaseScore(dice(after > 0, truth > 0), total, hit_before, hit_after, fp_before, fp_after)


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
    }


def canonical(ct: np.ndarray, labels: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    checkpoint: Any, n: int, seed: int, *, theta: float | None = None, shape: Any = None, device: str | None = None,
    progress: bool = False, sweep: Sequence[float] = (),
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


def pick_theta(sweep: list[dict[str, Any]], target: float) -> dict[str, Any]:
    """DESIGN.md calibration: the largest theta whose pooled sensitivity after post-processing reaches
    `target`; where none does, the most sensitive (then the largest) theta."""
    def sens(r: dict[str, Any]) -> float:
        v = r["lesion_sensitivity"]["pooled"]
        return -1.0 if v is None else float(v)

    ok = [r for r in sweep if sens(r) >= target]
    if ok:
        return max(ok, key=lambda r: r["theta"])
    return max(sweep, key=lambda r: (sens(r), r["theta"]))
