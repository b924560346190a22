"""Wilson intervals against published values, the F1 bootstrap, and the FROC sweep against MONAI."""

from __future__ import annotations

import numpy as np
import pytest
from eanno_training.evaluation import HitRule, froc, froc_score, sweep_case, wilson
from eanno_training.evaluation.stats import bootstrap_f1

# Newcombe (1998), Stat Med 17:857, Table I, method 3 (Wilson score, no continuity correction).
NEWCOMBE = [
    ((81, 263), (0.2553, 0.3662)),
    ((15, 148), (0.0624, 0.1605)),
    ((0, 20), (0.0, 0.1611)),
    ((1, 29), (0.0061, 0.1718)),
]


@pytest.mark.parametrize(("kn", "expected"), NEWCOMBE)
def test_wilson_matches_newcombe(kn: tuple[int, int], expected: tuple[float, float]) -> None:
    lo, hi = wilson(*kn)
    assert lo == pytest.approx(expected[0], abs=6e-5) and hi == pytest.approx(expected[1], abs=6e-5)


def test_wilson_edges() -> None:
    assert wilson(0, 0) is None
    lo, hi = wilson(29, 29)
    assert hi == 1.0 and 0.88 < lo < 0.89
    with pytest.raises(ValueError, match="successes"):
        wilson(3, 2)


def test_bootstrap_f1_brackets_the_estimate_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    truth = rng.random(60) < 0.6
    pred = np.where(rng.random(60) < 0.8, truth, ~truth)
    tp, fp, fn = (truth & pred).sum(), (~truth & pred).sum(), (truth & ~pred).sum()
    f1 = 2 * tp / (2 * tp + fp + fn)
    lo, hi = bootstrap_f1(truth, pred, n_boot=1000, seed=3)
    assert lo < f1 < hi and hi - lo < 0.4
    assert bootstrap_f1(truth, pred, n_boot=1000, seed=3) == (lo, hi)
    # perfect agreement leaves no spread
    assert bootstrap_f1(truth, truth, n_boot=200) == (1.0, 1.0)


def _blob_case(rng: np.random.Generator, n_lesions: int, n_fp: int) -> tuple:
    """A scan whose candidates are cubes of constant lesion probability: lesions hit by one cube each,
    FP cubes apart from everything. Returns ct, probs, truth, tp scores, fp scores."""
    shape = (48, 48, 16)
    truth = np.zeros(shape, np.uint8)
    probs = np.zeros((6, *shape), np.float32)
    probs[0] = 1.0
    slots = [(x, y) for x in range(2, 44, 7) for y in range(2, 44, 7)]
    order = rng.permutation(len(slots))
    tp, fp = [], []
    for k, s in enumerate(order[: n_lesions + n_fp]):
        x, y = slots[s]
        p = int(rng.integers(10, 920)) / 1024  # exact in float32, so ">= theta" means the same in both
        cls = int(rng.integers(3, 6))
        if k < n_lesions:
            truth[x : x + 4, y : y + 4, 4:8] = cls
            tp.append(p)
        else:
            fp.append(p)
        probs[:, x + 1 : x + 5, y + 1 : y + 5, 5:9] = 0.0
        probs[cls, x + 1 : x + 5, y + 1 : y + 5, 5:9] = p
        probs[0, x + 1 : x + 5, y + 1 : y + 5, 5:9] = 1.0 - p
    ct = np.full(shape, 40, np.int16)
    return ct, probs, truth, tp, fp


def test_froc_before_post_processing_equals_monai() -> None:
    """Where the definitions coincide (one candidate per lesion, each candidate one component), the sweep
    of the 'before' stage is MONAI's FROC curve, and the FROC scores agree."""
    from monai.metrics.froc import compute_froc_curve_data, compute_froc_score

    rng = np.random.default_rng(7)
    cases = [_blob_case(rng, int(rng.integers(0, 4)), int(rng.integers(0, 4))) for _ in range(6)]
    tp = np.array([p for c in cases for p in c[3]])
    fp = np.array([p for c in cases for p in c[4]])
    fps_m, sens_m = compute_froc_curve_data(fp, tp, num_targets=len(tp), num_images=len(cases))
    thetas = sorted(set(tp) | set(fp))[1:]  # MONAI's thresholds
    sweeps = [sweep_case(f"c{i}", c[0], c[1], c[2], thetas, rule=HitRule()) for i, c in enumerate(cases)]
    result = froc(sweeps)
    fps, sens = result.series("before")
    np.testing.assert_allclose(fps, fps_m[:-1])
    np.testing.assert_allclose(sens, sens_m[:-1])
    rates = (0.5, 1.0, 2.0)
    assert min(fps) <= 0.5
    assert froc_score(result, "before", rates) == pytest.approx(compute_froc_score(fps_m, sens_m, rates))
    # every candidate lies outside any pancreas: post-processing (rule 1) removes them all
    _, sens_after = result.series("after")
    assert np.all(sens_after == 0)
    # and the false ones among them are counted as rule 1's, one per false candidate at each theta
    for i, t in enumerate(result.thetas):
        decisions = result.points["before"][i].get("false_region_decisions", {})
        assert decisions == ({"removed_outside_pancreas": int((fp >= t).sum())} if (fp >= t).any() else {})
