"""Lesion matching, FROC points and patient figures on hand-computed examples (issue 6, item 6)."""

from __future__ import annotations

import numpy as np
import pytest
from eanno_training.evaluation import HitRule, match_case, patient_stats
from eanno_training.evaluation.froc import froc as pool
from eanno_training.evaluation.froc import labels_case, point

PDAC, CYST, PNET = 3, 4, 5


def box(a: np.ndarray, lo: tuple[int, int, int], hi: tuple[int, int, int], value: int) -> None:
    a[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = value


def scan_two_lesions() -> tuple[np.ndarray, np.ndarray]:
    """Truth: a PDAC and a cyst. Prediction: the PDAC (partly), nothing on the cyst, one FP elsewhere."""
    truth = np.zeros((40, 40, 40), np.uint8)
    box(truth, (2, 2, 2), (30, 30, 30), 1)  # pancreas
    box(truth, (5, 5, 5), (10, 10, 10), PDAC)
    box(truth, (20, 20, 20), (25, 25, 25), CYST)
    pred = np.zeros_like(truth)
    box(pred, (7, 7, 7), (12, 12, 12), PDAC)  # overlaps the PDAC (27 of 125 voxels)
    box(pred, (33, 33, 33), (36, 36, 36), PNET)  # touches no lesion
    return pred, truth


def scan_normal_one_fp() -> tuple[np.ndarray, np.ndarray]:
    truth = np.zeros((40, 40, 40), np.uint8)
    box(truth, (2, 2, 2), (30, 30, 30), 1)
    pred = truth.copy()
    box(pred, (10, 10, 10), (13, 13, 13), CYST)
    return pred, truth


def test_two_lesions_one_found_one_fp() -> None:
    pred, truth = scan_two_lesions()
    m = match_case(pred, truth)
    assert m.gt == {PDAC: 1, CYST: 1, PNET: 0}
    assert m.hit == {PDAC: 1, CYST: 0, PNET: 0}
    assert m.fp == {PDAC: 0, CYST: 0, PNET: 1}
    p = point([m])
    assert p["pooled"]["sensitivity"] == 0.5 and p["pooled"]["fp_per_scan"] == 1.0
    assert p["pancreatic_pdac"]["sensitivity"] == 1.0 and p["pancreatic_cyst"]["sensitivity"] == 0.0
    assert p["pancreatic_pnet"]["sensitivity"] is None and p["pancreatic_pnet"]["fp_per_scan"] == 1.0


def test_iou_rule_rejects_a_small_overlap() -> None:
    pred, truth = scan_two_lesions()
    # IoU of the PDAC pair: 27 / (125 + 125 - 27) = 0.121
    assert match_case(pred, truth, HitRule("iou", 0.12)).hit[PDAC] == 1
    m = match_case(pred, truth, HitRule("iou", 0.13))
    assert m.hit[PDAC] == 0 and m.fp == {PDAC: 1, CYST: 0, PNET: 1}


def test_class_aware_rule() -> None:
    pred, truth = scan_two_lesions()
    pred[pred == PDAC] = CYST  # found, but called a cyst
    assert match_case(pred, truth).hit[PDAC] == 1
    m = match_case(pred, truth, HitRule(class_aware=True))
    assert m.hit[PDAC] == 0 and m.fp[CYST] == 1


def test_normal_scan_with_one_fp_and_pooling() -> None:
    pred, truth = scan_normal_one_fp()
    m = match_case(pred, truth)
    assert m.n_gt == 0 and m.n_hit == 0 and m.fp == {PDAC: 0, CYST: 1, PNET: 0}
    # both scans together: 1 of 2 lesions, (1 + 1) FP components over 2 scans
    result = pool([labels_case("a", *scan_two_lesions()), labels_case("b", pred, truth)])
    pooled = result.points["after"][0]["pooled"]
    assert pooled["sensitivity"] == 0.5 and pooled["fp_per_scan"] == 1.0 and pooled["fp"] == 2


def test_split_lesion_is_one_hit_no_fp() -> None:
    truth = np.zeros((30, 30, 30), np.uint8)
    box(truth, (5, 5, 5), (15, 15, 15), PDAC)  # 1000 voxels
    pred = np.zeros_like(truth)
    box(pred, (5, 5, 5), (15, 15, 9), PDAC)  # 400 voxels
    box(pred, (5, 5, 11), (15, 15, 15), PDAC)  # 400 voxels, apart from the first
    m = match_case(pred, truth)
    assert (m.n_gt, m.n_hit, m.n_fp, m.n_pred) == (1, 1, 0, 2)
    # each half has IoU 0.4: below 0.5 neither counts, and both become false positives
    m = match_case(pred, truth, HitRule("iou", 0.5))
    assert (m.n_hit, m.n_fp) == (0, 2)
    assert match_case(pred, truth, HitRule("iou", 0.4)).n_hit == 1


def test_merged_lesions_are_two_hits() -> None:
    truth = np.zeros((30, 30, 30), np.uint8)
    box(truth, (5, 5, 5), (10, 10, 10), CYST)  # 125
    box(truth, (5, 5, 15), (10, 10, 20), CYST)  # 125, 5 voxels apart
    pred = np.zeros_like(truth)
    box(pred, (5, 5, 5), (10, 10, 20), CYST)  # one component over both and the gap: 375
    m = match_case(pred, truth)
    assert (m.n_gt, m.n_hit, m.n_fp, m.n_pred) == (2, 2, 0, 1)
    # IoU with each lesion is 125 / 375 = 1/3
    assert match_case(pred, truth, HitRule("iou", 0.33)).n_hit == 2
    m = match_case(pred, truth, HitRule("iou", 0.34))
    assert (m.n_hit, m.n_fp) == (0, 1)


def test_connectivity_decides_what_a_component_is() -> None:
    truth = np.zeros((10, 10, 10), np.uint8)
    truth[2, 2, 2] = truth[3, 3, 3] = PNET  # corner neighbours
    assert match_case(truth, truth, connectivity=26).n_gt == 1
    assert match_case(truth, truth, connectivity=6).n_gt == 2


def test_hit_rule_parse_and_errors() -> None:
    assert HitRule.parse("iou>=0.3") == HitRule("iou", 0.3)
    assert HitRule.parse("overlap").describe() == "overlap"
    with pytest.raises(ValueError, match="iou:T"):
        HitRule.parse("dice:0.5")
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        HitRule("iou", 0.0)
    with pytest.raises(ValueError, match="shape"):
        match_case(np.zeros((2, 2, 2), np.uint8), np.zeros((2, 2, 3), np.uint8))


def test_patient_level_counts() -> None:
    a = match_case(*scan_two_lesions())  # lesion scan, predicted positive: TP
    b = match_case(*scan_normal_one_fp())  # normal scan, predicted positive: FP
    truth = np.zeros((10, 10, 10), np.uint8)
    c = match_case(truth, truth)  # normal, nothing predicted: TN
    lesion = truth.copy()
    lesion[2:4, 2:4, 2:4] = PDAC
    d = match_case(truth, lesion)  # lesion missed: FN
    s = patient_stats([a, b, c, d], n_boot=500)
    assert s["confusion"] == {"tp": 1, "fp": 1, "fn": 1, "tn": 1}
    assert s["sensitivity"]["value"] == 0.5 and s["specificity"]["value"] == 0.5 and s["ppv"]["value"] == 0.5
    assert s["f1"]["value"] == 0.5
    assert s["fp_regions_per_scan"] == 0.5  # two FP components over four scans
    assert s["lesion_sensitivity"] == pytest.approx(1 / 3)
    lo, hi = s["sensitivity"]["ci"]
    assert lo < 0.5 < hi
