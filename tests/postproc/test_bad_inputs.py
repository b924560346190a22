"""Bad input: a clear InputError naming the problem, or a well-defined result; never numpy's traceback."""

from __future__ import annotations

import numpy as np
import pytest
from eanno_postproc import InputError, refine
from eanno_postproc.synthetic import make_case

S = slice


@pytest.fixture(scope="module")
def case():
    return make_case(seed=2, n_candidates=9, probs_dtype=np.float32, shape=(64, 64, 40))


def test_input_error_is_a_value_error() -> None:
    assert issubclass(InputError, ValueError)


@pytest.mark.parametrize(
    ("ct_shape", "lab_shape", "words"),
    [
        ((8, 8, 8), (8, 8, 9), ["labels: shape (8, 8, 9)", "CT's shape (8, 8, 8)"]),
        ((8, 8), (8, 8), ["ct: expected a 3D volume, got 2D"]),
        ((8, 8, 8, 1), (8, 8, 8, 1), ["ct: expected a 3D volume, got 4D"]),
        ((8, 8, 8), (8, 8, 8, 1), ["labels: expected a 3D label map, got 4D"]),
        ((0, 8, 8), (0, 8, 8), ["ct: the volume is empty"]),
    ],
)
def test_shapes(ct_shape, lab_shape, words) -> None:
    with pytest.raises(InputError) as info:
        refine(np.zeros(ct_shape, np.int16), np.zeros(lab_shape, np.uint8))
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    ("value", "dtype", "found"), [(6, np.uint8, "6"), (255, np.uint8, "255"), (-1, np.int16, "-1")]
)
def test_labels_outside_0_to_5(value, dtype, found) -> None:
    lab = np.zeros((6, 6, 6), dtype)
    lab[2, 3, 4] = value
    with pytest.raises(InputError, match=f"labels: values must be class ids 0-5, found {found}"):
        refine(np.zeros((6, 6, 6), np.int16), lab)


def test_fractional_or_non_numeric_labels() -> None:
    ct = np.zeros((4, 4, 4), np.int16)
    with pytest.raises(InputError, match="whole numbers"):
        refine(ct, np.full((4, 4, 4), 1.5))
    with pytest.raises(InputError, match="dtype <U1"):
        refine(ct, np.full((4, 4, 4), "a"))
    whole = np.zeros((4, 4, 4), np.float32)
    whole[1, 1, 1] = 3.0  # whole-number floats (as NIfTI files often store labels) are fine
    assert refine(ct, whole).report["summary"]["candidates"] == 1


def test_nan_in_a_float_ct() -> None:
    ct = np.zeros((4, 4, 4), np.float32)
    ct[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="ct: holds NaN or infinite"):
        refine(ct, np.zeros((4, 4, 4), np.uint8))


def test_exactly_one_of_labels_and_probs(case) -> None:
    with pytest.raises(InputError, match="exactly one of labels"):
        refine(case.ct)
    with pytest.raises(InputError, match="exactly one of labels"):
        refine(case.ct, case.labels, case.probs)


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda p: p.__setitem__((2, 5, 5, 5), np.nan), ["probs: holds NaN"]),
        (lambda p: p.__setitem__((2, 5, 5, 5), np.inf), ["probs: holds infinite"]),
        (lambda p: p.__setitem__((2, 5, 5, 5), -0.5), ["probs: holds negative values"]),
        (lambda p: p.__setitem__((2, 5, 5, 5), 1.5), ["probs: holds values above 1"]),
        (lambda p: p.__imul__(0.5), ["must sum to 1", "off by up to 0.5"]),
    ],
)
def test_bad_probability_values(case, mutate, words) -> None:
    p = case.probs.copy()
    mutate(p)
    with pytest.raises(InputError) as info:
        refine(case.ct, probs=p)
    for word in words:
        assert word in str(info.value)


def test_probability_layout_errors(case) -> None:
    with pytest.raises(InputError, match=r"expected shape \(6, \*ct.shape\) = \(6, 64, 64, 40\)"):
        refine(case.ct, probs=np.moveaxis(case.probs, 0, -1))  # channel-last
    with pytest.raises(InputError, match="expected shape"):
        refine(case.ct, probs=case.probs[:5])
    with pytest.raises(InputError, match=r"volume shape \(64, 64, 39\)"):
        refine(case.ct, probs=case.probs[..., :39])
    with pytest.raises(InputError, match="expected float16, float32 or float64, got dtype uint8"):
        refine(case.ct, probs=(case.probs * 255).astype(np.uint8))
    logits = np.log(case.probs)
    with pytest.raises(InputError, match="negative"):
        refine(case.ct, probs=logits)


@pytest.mark.parametrize("theta", [0, -0.1, 1.5, "high", None])
def test_bad_theta(case, theta) -> None:
    if theta is None:
        assert refine(case.ct, probs=case.probs, theta=theta).report["theta"] == 0.003
        return
    with pytest.raises(InputError, match="theta must be"):
        refine(case.ct, probs=case.probs, theta=theta)


@pytest.mark.parametrize(
    ("affine", "words"),
    [
        (np.eye(3), "affine: expected a 4x4 matrix"),
        (np.diag([1.0, 0.0, 1.0, 1.0]), "singular"),
        (np.full((4, 4), np.nan), "NaN"),
    ],
)
def test_bad_affine(case, affine, words) -> None:
    with pytest.raises(InputError, match=words):
        refine(case.ct, case.labels, affine=affine)


def test_bad_connectivity(case) -> None:
    with pytest.raises(InputError, match="connectivity must be 6, 18 or 26, got 8"):
        refine(case.ct, case.labels, connectivity=8)


def test_empty_pancreas_removes_every_lesion_and_says_so(case) -> None:
    lab = case.labels.copy()
    lab[(lab == 1) | (lab == 2)] = 0
    res = refine(case.ct, lab)
    s = res.report["summary"]
    assert s["pancreas_empty"] is True
    assert s["candidates"] > 0 and s["by_decision"]["removed_outside_pancreas"] == s["candidates"]
    assert any("empty" in note for note in s["notes"])
    assert not res.labels.any()
    assert np.array_equal(res.removed, lab)


def test_all_zero_prediction(case) -> None:
    res = refine(case.ct, np.zeros_like(case.labels))
    assert res.report["lesions"] == []
    assert res.report["summary"]["candidates"] == 0
    assert "no lesion candidates" in res.report["summary"]["notes"]
    assert not res.labels.any() and not res.removed.any()


@pytest.mark.parametrize("cls", [3, 4, 5])
def test_all_lesion_map_is_one_component_removed(case, cls) -> None:
    res = refine(case.ct, np.full(case.labels.shape, cls, np.uint8))
    (lesion,) = res.report["lesions"]
    assert lesion["voxels"] == case.labels.size
    assert lesion["decision"] == "removed_outside_pancreas"
    assert not res.labels.any() and (res.removed == cls).all()


def test_all_lesion_probabilities_do_not_raise(case) -> None:
    p = np.zeros_like(case.probs)
    p[4] = 1
    res = refine(case.ct, probs=p)
    assert res.report["summary"]["candidates"] == 1


def test_inputs_are_not_modified(case) -> None:
    lab, ct = case.labels.copy(), case.ct.copy()
    refine(case.ct, case.labels)
    assert np.array_equal(lab, case.labels) and np.array_equal(ct, case.ct)
