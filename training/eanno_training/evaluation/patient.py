"""Patient-level figures in the paper's Table 1 layout: a scan is positive when any lesion survives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .matching import CaseMatch
from .stats import bootstrap_f1, f1_score, wilson

PAPER_FP_PER_SCAN = 0.6  # the published false-positive regions per scan after post-processing
_ROWS = (("sensitivity", "Sensitivity"), ("specificity", "Specificity"), ("ppv", "PPV"), ("f1", "F1"))


def _prop(k: int, n: int, confidence: float) -> dict[str, Any]:
    ci = wilson(k, n, confidence)
    return {
        "value": None if n == 0 else k / n,
        "ci": None if ci is None else list(ci),
        "k": k,
        "n": n,
        "method": "wilson",
    }


def patient_stats(
    matches: Sequence[CaseMatch], *, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Sensitivity, specificity, PPV (Wilson CIs) and F1 (bootstrap CI) over scans, plus FP regions per scan."""
    truth = [m.n_gt > 0 for m in matches]
    pred = [m.n_pred > 0 for m in matches]
    tp = sum(t and p for t, p in zip(truth, pred, strict=True))
    fp = sum(p and not t for t, p in zip(truth, pred, strict=True))
    fn = sum(t and not p for t, p in zip(truth, pred, strict=True))
    tn = sum(not t and not p for t, p in zip(truth, pred, strict=True))
    f1 = f1_score(tp, fp, fn)
    f1_ci = bootstrap_f1(truth, pred, n_boot=n_boot, seed=seed, confidence=confidence)
    n = len(matches)
    return {
        "scans": n,
        "positive_scans": tp + fn,
        "negative_scans": fp + tn,
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
        "sensitivity": _prop(tp, tp + fn, confidence),
        "specificity": _prop(tn, tn + fp, confidence),
        "ppv": _prop(tp, tp + fp, confidence),
        "f1": {
            "value": f1,
            "ci": None if f1_ci is None else list(f1_ci),
            "method": f"bootstrap ({n_boot}, seed {seed})",
        },
        "fp_regions_per_scan": None if n == 0 else sum(m.n_fp for m in matches) / n,
        "lesion_sensitivity": None
        if not sum(m.n_gt for m in matches)
        else sum(m.n_hit for m in matches) / sum(m.n_gt for m in matches),
        "confidence": confidence,
    }


def _fmt(x: float | None, pct: bool = True) -> str:
    if x is None:
        return "n/a"
    return f"{100 * x:.1f}%" if pct else f"{x:.2f}"


def _cell(entry: dict[str, Any]) -> str:
    ci = entry.get("ci")
    v = _fmt(entry["value"])
    if ci is None:
        return v
    frac = f" ({entry['k']}/{entry['n']})" if "k" in entry else ""
    return f"{v} [{_fmt(ci[0])}, {_fmt(ci[1])}]{frac}"


def table_markdown(columns: dict[str, dict[str, Any]], *, title: str = "Patient-level results") -> str:
    """The Table 1 layout: one row per metric, one column per stage (e.g. before / after post-processing)."""
    names = list(columns)
    first = columns[names[0]]
    conf = int(round(100 * first["confidence"]))
    lines = [
        f"**{title}** ({first['scans']} scans: {first['positive_scans']} with lesions, "
        f"{first['negative_scans']} without; {conf}% CI: Wilson, F1 bootstrap)",
        "",
        "| Metric | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for key, label in _ROWS:
        lines.append(f"| {label} | " + " | ".join(_cell(columns[c][key]) for c in names) + " |")
    lines.append(
        "| Lesion-level sensitivity | "
        + " | ".join(_fmt(columns[c]["lesion_sensitivity"]) for c in names)
        + " |"
    )
    lines.append(
        "| FP regions per scan | "
        + " | ".join(_fmt(columns[c]["fp_regions_per_scan"], pct=False) for c in names)
        + " |"
    )
    lines += [
        "",
        f"Paper, after post-processing: about {PAPER_FP_PER_SCAN} FP regions per scan at 99% lesion sensitivity.",
    ]
    return "\n".join(lines) + "\n"
