"""Step 0 from probabilities: the threshold, the winner among lesion classes, the rest by argmax."""

from __future__ import annotations

import numpy as np
import pytest
from eanno_postproc import Rules, refine
from eanno_postproc.inputs import labels_from_probs
from eanno_postproc.synthetic import make_case


def background(n: int, dtype=np.float16) -> np.ndarray:
    """(6, n, 1, 1) probabilities, all background."""
    p = np.zeros((6, n, 1, 1), dtype=dtype)
    p[0] = 1
    return p


def set_voxel(p: np.ndarray, i: int, values: dict[int, float]) -> None:
    """Voxel i gets these class probabilities; background takes the rest."""
    p[:, i] = 0
    for c, v in values.items():
        p[c, i] = v
    p[0, i] = 1 - sum(values.values())


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_theta_is_inclusive_to_the_exact_float(dtype) -> None:
    theta = 0.003  # not representable: the candidates are exactly the stored values >= 0.003
    at = np.array(theta, dtype=dtype)
    if float(at) < theta:
        at = np.nextafter(at, dtype(1))
    below = np.nextafter(at, dtype(0))
    assert float(below) < theta <= float(at)
    p = background(3, dtype)
    set_voxel(p, 0, {1: 0.6, 3: float(at)})
    set_voxel(p, 1, {1: 0.6, 4: float(below)})
    set_voxel(p, 2, {5: 1.0})
    assert labels_from_probs(p, theta)[:, 0, 0].tolist() == [3, 1, 5]


def test_highest_lesion_class_wins_and_ties_go_to_the_lower_class() -> None:
    p = background(5)
    set_voxel(p, 0, {3: 0.01, 4: 0.02, 5: 0.015})  # cyst wins though background is far higher
    set_voxel(p, 1, {3: 0.1, 4: 0.1})  # tie: PDAC, as argmax
    set_voxel(p, 2, {4: 0.25, 5: 0.25})  # tie: cyst
    set_voxel(p, 3, {1: 0.4, 2: 0.4})  # no lesion; pancreas/duct tie -> pancreas
    set_voxel(p, 4, {2: 0.5, 1: 0.25, 5: 0.001})  # lesion below theta -> duct by argmax
    assert labels_from_probs(p, 0.003)[:, 0, 0].tolist() == [4, 3, 4, 1, 2]


def test_theta_argument_overrides_the_rules() -> None:
    p = background(2)
    set_voxel(p, 0, {1: 0.9, 3: 0.05})
    ct = np.zeros(p.shape[1:], dtype=np.int16)
    assert refine(ct, probs=p).report["summary"]["candidates"] == 1
    assert refine(ct, probs=p, theta=0.1).report["summary"]["candidates"] == 0
    assert refine(ct, probs=p, rules=Rules.from_dict({"theta": 0.1})).report["theta"] == 0.1
    assert refine(ct, probs=p, theta=0.1).report["theta"] == 0.1


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_one_hot_probabilities_refine_like_the_label_map(dtype) -> None:
    case = make_case(seed=3, n_candidates=9, probs_dtype=dtype)
    from_labels = refine(case.ct, case.labels, affine=case.affine)
    from_probs = refine(case.ct, probs=case.probs, affine=case.affine)
    assert np.array_equal(from_labels.labels, from_probs.labels)
    assert np.array_equal(from_labels.removed, from_probs.removed)
    assert [x["decision"] for x in from_labels.report["lesions"]] == [
        x["decision"] for x in from_probs.report["lesions"]
    ]
    assert from_labels.report["input"] == "labels" and from_labels.report["theta"] is None
    assert from_probs.report["input"] == "probs" and from_probs.report["theta"] == 0.003


def test_prob_max_is_the_highest_probability_of_the_class_in_the_component() -> None:
    p = background(4)
    for i, v in enumerate([0.2, 0.7, 0.4]):
        set_voxel(p, i, {1: 0.0, 4: v})
    ct = np.zeros(p.shape[1:], dtype=np.int16)
    (lesion,) = refine(ct, probs=p).report["lesions"]
    assert lesion["voxels"] == 3
    assert lesion["prob_max"] == pytest.approx(float(np.float16(0.7)))
    labels_only = refine(ct, labels=labels_from_probs(p, 0.003))
    assert labels_only.report["lesions"][0]["prob_max"] is None


def test_probabilities_are_not_modified() -> None:
    case = make_case(seed=1, n_candidates=5, probs_dtype=np.float16, speckles=20)
    before = case.probs.copy()
    refine(case.ct, probs=case.probs)
    assert np.array_equal(before, case.probs)


def test_negative_zero_is_zero() -> None:
    p = background(3)
    set_voxel(p, 1, {1: 1.0})
    p[3, 1] = -0.0  # sign bit set: must not read as a huge bit pattern
    assert labels_from_probs(p, 0.003)[:, 0, 0].tolist() == [0, 1, 0]
