"""FROC sweeps: lesion sensitivity against false-positive components per scan over a range of thresholds,
per class and pooled, before and after the adaptive post-processing; theta* for a target sensitivity."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cc3d
import numpy as np
from eanno_contracts.labels import LESION_CLASSES as LESION_IDS
from eanno_postproc import Rules, refine

from .matching import LESION_CLASSES, CaseMatch, HitRule, match_case

STAGES = ("before", "after")
# Thresholds swept by default: log-spaced over four decades around the published 0.003, plus 0.5.
DEFAULT_THETAS: tuple[float, ...] = tuple(float(f"{t:.3g}") for t in np.geomspace(1e-4, 0.9, 40))


@dataclass
class CaseSweep:
    """One scan at every theta: lesion counts before and after post-processing."""

    name: str
    thetas: tuple[float, ...]
    before: list[CaseMatch]
    after: list[CaseMatch]

    def stage(self, stage: str) -> list[CaseMatch]:
        """The counts of one stage ('before' or 'after')."""
        return self.before if stage == "before" else self.after


def stages_from_refine(labels: np.ndarray, removed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(before, after) label maps: before = every candidate (the removed ones put back), after = kept."""
    after = np.asarray(labels)
    removed = np.asarray(removed)
    return np.where(removed > 0, removed, after), after


def sweep_case(
    name: str,
    ct: np.ndarray,
    probs: np.ndarray,
    truth: np.ndarray,
    thetas: Sequence[float],
    *,
    affine: np.ndarray | None = None,
    rules: Rules | None = None,
    rule: HitRule | None = None,
) -> CaseSweep:
    """Threshold one scan's probabilities at every theta (eanno_postproc.refine) and match both stages."""
    if probs.shape[1:] != truth.shape or ct.shape != truth.shape:
        raise ValueError(
            f"{name}: CT {ct.shape}, probabilities {probs.shape} and truth {truth.shape} disagree"
        )
    conn = rules.connectivity if rules is not None else 26
    before, after = [], []
    for theta in thetas:
        res = refine(ct, probs=probs, theta=float(theta), affine=affine, rules=rules)
        b, a = stages_from_refine(res.labels, res.removed)
        before.append(match_case(b, truth, rule, conn))
        before[-1].fp_decisions = false_region_decisions(b, truth, res.report["lesions"], conn)
        after.append(match_case(a, truth, rule, conn))
    return CaseSweep(name, tuple(float(t) for t in thetas), before, after)


def false_region_decisions(
    before: np.ndarray, truth: np.ndarray, records: Sequence[dict[str, Any]], connectivity: int
) -> dict[str, int]:
    """How post-processing decided the candidates that overlap no true lesion: {decision: count}.

    refine's records follow its components in raster order of their first voxel, as cc3d numbers the
    lesion components of the candidate map, so record k is component k.
    """
    lesion = np.isin(before, LESION_IDS)
    cc, n = cc3d.connected_components(np.where(lesion, before, 0), connectivity=connectivity, return_N=True)
    if n != len(records):
        raise RuntimeError(f"{n} candidate components but {len(records)} report records")
    hit = set(np.unique(cc[np.isin(truth, LESION_IDS) & lesion]).tolist())
    out: dict[str, int] = {}
    for k, rec in enumerate(records, start=1):
        if k not in hit:
            out[rec["decision"]] = out.get(rec["decision"], 0) + 1
    return out


def labels_case(
    name: str, pred: np.ndarray, truth: np.ndarray, rule: HitRule | None = None, connectivity: int = 26
) -> CaseSweep:
    """A scan given as a label map only: one point (theta unknown -> NaN), the same map in both stages."""
    m = match_case(pred, truth, rule, connectivity)
    return CaseSweep(name, (float("nan"),), [m], [m])


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


def point(matches: Sequence[CaseMatch]) -> dict[str, Any]:
    """Sensitivity and FP per scan per class and pooled, with the raw counts, over a list of scans."""
    n = len(matches)
    out: dict[str, Any] = {}
    for c, cname in LESION_CLASSES.items():
        gt = sum(m.gt[c] for m in matches)
        hit = sum(m.hit[c] for m in matches)
        fp = sum(m.fp[c] for m in matches)
        out[cname] = {
            "sensitivity": _ratio(hit, gt),
            "fp_per_scan": _ratio(fp, n),
            "lesions": gt,
            "detected": hit,
            "fp": fp,
        }
    gt = sum(m.n_gt for m in matches)
    hit = sum(m.n_hit for m in matches)
    fp = sum(m.n_fp for m in matches)
    out["pooled"] = {
        "sensitivity": _ratio(hit, gt),
        "fp_per_scan": _ratio(fp, n),
        "lesions": gt,
        "detected": hit,
        "fp": fp,
    }
    decisions: dict[str, int] = {}
    for m in matches:
        for k, v in m.fp_decisions.items():
            decisions[k] = decisions.get(k, 0) + v
    if decisions:  # the before stage of a probability sweep: what became of the false regions
        out["false_region_decisions"] = decisions
    return out


@dataclass
class Froc:
    """The FROC of a set of scans: one point per theta and stage."""

    thetas: tuple[float, ...]
    scans: int
    points: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # stage -> per theta

    def series(self, stage: str, key: str = "pooled") -> tuple[np.ndarray, np.ndarray]:
        """(fp_per_scan, sensitivity) arrays of one stage and class (None -> NaN)."""
        pts = self.points[stage]
        fp = np.array(
            [np.nan if p[key]["fp_per_scan"] is None else p[key]["fp_per_scan"] for p in pts], float
        )
        se = np.array(
            [np.nan if p[key]["sensitivity"] is None else p[key]["sensitivity"] for p in pts], float
        )
        return fp, se

    def theta_star(self, target: float = 0.99, stage: str = "after") -> dict[str, Any]:
        """The largest swept theta whose pooled sensitivity (at `stage`) reaches `target`."""
        if not 0.0 < target <= 1.0:
            raise ValueError(f"target sensitivity must be in (0, 1], got {target}")
        _, se = self.series(stage)
        ok = [
            i
            for i, s in enumerate(se)
            if np.isfinite(s) and s >= target - 1e-12 and np.isfinite(self.thetas[i])
        ]
        if not ok:
            best = None
            if np.isfinite(se).any():  # the largest theta among those with the best sensitivity
                top = np.nanmax(se)
                best = max((i for i in range(len(se)) if se[i] == top), key=lambda k: self.thetas[k])
            return {
                "theta": None,
                "reached": False,
                "target": target,
                "stage": stage,
                "best_sensitivity": None if best is None else float(se[best]),
                "best_theta": None if best is None else self.thetas[best],
            }
        i = max(ok, key=lambda k: self.thetas[k])
        return {
            "theta": self.thetas[i],
            "reached": True,
            "target": target,
            "stage": stage,
            "index": i,
            "before": self.points["before"][i]["pooled"],
            "after": self.points["after"][i]["pooled"],
        }

    def to_json(self) -> dict[str, Any]:
        """JSON-able: thetas, scans, and per stage the list of points."""
        thetas = [
            t if np.isfinite(t) else None for t in self.thetas
        ]  # label maps have no theta: null, not NaN
        return {"scans": self.scans, "thetas": thetas, **{s: self.points[s] for s in STAGES}}


def froc(sweeps: Iterable[CaseSweep]) -> Froc:
    """Pool per-scan sweeps (all on the same thetas) into one FROC."""
    sweeps = list(sweeps)
    if not sweeps:
        raise ValueError("no scans to evaluate")
    thetas = sweeps[0].thetas
    for s in sweeps:
        if len(s.thetas) != len(thetas) or not np.allclose(s.thetas, thetas, equal_nan=True):
            raise ValueError(f"{s.name}: swept on different thetas than {sweeps[0].name}")
    out = Froc(thetas, len(sweeps))
    for stage in STAGES:
        out.points[stage] = [point([s.stage(stage)[i] for s in sweeps]) for i in range(len(thetas))]
    return out


def froc_score(
    result: Froc, stage: str = "after", fp_rates: Sequence[float] = (0.25, 0.5, 1, 2, 4, 8)
) -> float | None:
    """Mean pooled sensitivity interpolated at the given FP-per-scan rates (the CAMELYON16 / MONAI score)."""
    fp, se = result.series(stage)
    ok = np.isfinite(fp) & np.isfinite(se)
    if not ok.any():
        return None
    # ascending FP; among equal FP rates the most sensitive point last, as np.interp takes the last
    order = np.lexsort((se[ok], fp[ok]))
    return float(np.mean(np.interp(fp_rates, fp[ok][order], se[ok][order])))
