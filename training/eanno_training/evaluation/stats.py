"""Confidence intervals: Wilson score intervals for proportions, a percentile bootstrap for F1."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval for successes / n (None when n == 0), via scipy's binomtest."""
    from scipy.stats import binomtest  # here, not at import: scipy.stats alone costs most of a second

    if not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return None
    ci = binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def f1_score(tp: int, fp: int, fn: int) -> float | None:
    """F1 = 2TP / (2TP + FP + FN); None when there is nothing to score."""
    d = 2 * tp + fp + fn
    return None if d == 0 else 2 * tp / d


def bootstrap_f1(
    truth: Sequence[bool],
    pred: Sequence[bool],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of F1 over scans (resampled with replacement, seeded)."""
    t = np.asarray(truth, bool)
    p = np.asarray(pred, bool)
    if t.shape != p.shape:
        raise ValueError(f"truth and prediction have different lengths ({t.size} vs {p.size})")
    if t.size == 0:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, t.size, size=(n_boot, t.size))
    tb, pb = t[idx], p[idx]
    tp = (tb & pb).sum(1)
    fp = (~tb & pb).sum(1)
    fn = (tb & ~pb).sum(1)
    d = 2 * tp + fp + fn
    f1 = np.where(d > 0, 2 * tp / np.maximum(d, 1), np.nan)
    f1 = f1[np.isfinite(f1)]
    if f1.size == 0:
        return None
    a = (1 - confidence) / 2
    return float(np.quantile(f1, a)), float(np.quantile(f1, 1 - a))
