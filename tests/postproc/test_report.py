"""The lesion report: every field, in voxel and world units, JSON-able; and the summary."""

from __future__ import annotations

import json

import numpy as np
import pytest
from eanno_postproc import CLASS_NAMES, refine
from eanno_postproc.geometry import longest_diameter_mm
from eanno_postproc.synthetic import make_case

S = slice
FIELDS = {
    "id", "class", "class_id", "voxels", "volume_ml", "hu_mean", "hu_min", "hu_max", "prob_max",
    "centroid_voxel", "centroid_mm", "bbox_voxel", "longest_diameter_mm", "volume_ratio_percent",
    "touches_pancreas", "touches_duct", "decision", "compared", "reason", "new_class",
}  # fmt: skip


def test_every_field_in_voxel_and_world_units(volume, oblique) -> None:
    v = volume().paint((S(4, 12), S(4, 12), S(4, 12)), 1)
    v.paint((S(6, 9), S(7, 8), S(5, 7)), 4, hu=20)
    v.ct[8, 7, 6] = 35
    affine = oblique
    res = refine(v.ct, v.labels, affine=affine)
    (x,) = res.report["lesions"]
    assert set(x) == FIELDS
    assert (x["id"], x["class"], x["class_id"], x["voxels"]) == (1, "pancreatic_cyst", 4, 6)
    voxel_ml = abs(np.linalg.det(affine[:3, :3])) / 1000
    assert x["volume_ml"] == pytest.approx(6 * voxel_ml)
    assert (x["hu_mean"], x["hu_min"], x["hu_max"]) == (pytest.approx(22.5), 20.0, 35.0)
    assert x["centroid_voxel"] == pytest.approx([7.0, 7.0, 5.5])
    assert x["centroid_mm"] == pytest.approx((affine @ [7.0, 7.0, 5.5, 1.0])[:3])
    assert x["bbox_voxel"] == {"min": [6, 7, 5], "max": [8, 7, 6]}
    corner_to_corner = affine[:3, :3] @ np.array([2, 0, 1])
    assert x["longest_diameter_mm"] == pytest.approx(np.linalg.norm(corner_to_corner))
    assert x["volume_ratio_percent"] == pytest.approx(100 * 6 / (512 - 6))
    assert (x["decision"], x["new_class"], x["compared"]) == ("kept", "pancreatic_cyst", None)
    json.dumps(res.report, allow_nan=False)  # strict JSON: no NaN or infinity anywhere
    assert res.report["spacing_mm"] == pytest.approx([0.8, 0.9, 2.5])
    assert res.report["rules"]["connectivity"] == 26
    assert res.report["shape"] == [24, 24, 24]


def test_labels_and_removed_are_uint8_on_the_input_shape(volume) -> None:
    v = volume().paint((S(2, 5), S(2, 5), S(2, 5)), 3)
    v.labels = v.labels.astype(np.int64)
    res = refine(v.ct, v.labels)
    assert res.labels.dtype == np.uint8 and res.removed.dtype == np.uint8
    assert res.labels.shape == res.removed.shape == v.ct.shape


@pytest.mark.parametrize(
    ("mask_voxels", "spacing", "expected"),
    [
        ([(0, 0, 0)], (1, 1, 1), 0.0),
        ([(0, 0, k) for k in range(5)], (0.7, 0.7, 2.0), 8.0),
        ([(0, 0, 0), (3, 4, 0)], (1, 1, 1), 5.0),
        (
            [(i, j, k) for i in range(3) for j in range(4) for k in range(5)],
            (1, 2, 3),
            np.sqrt(2**2 + 6**2 + 12**2),
        ),
    ],
)
def test_longest_diameter_cases(mask_voxels, spacing, expected) -> None:
    mask = np.zeros((6, 6, 6), dtype=bool)
    for idx in mask_voxels:
        mask[idx] = True
    assert longest_diameter_mm(mask, np.diag(spacing)) == pytest.approx(expected)


def test_longest_diameter_equals_brute_force_on_random_shapes() -> None:
    from scipy.spatial.distance import pdist

    rng = np.random.default_rng(7)
    for _ in range(60):
        mask = rng.random(tuple(rng.integers(1, 14, 3))) < rng.uniform(0.05, 0.95)
        linear = rng.normal(size=(3, 3))
        points = np.argwhere(mask) @ linear.T
        expected = pdist(points).max() if len(points) > 1 else 0.0
        assert longest_diameter_mm(mask, linear) == pytest.approx(expected, abs=1e-9)


def test_large_ball_diameter() -> None:
    r = 40
    grid = np.ogrid[-r - 1 : r + 2, -r - 1 : r + 2, -r - 1 : r + 2]
    ball = sum(g**2 for g in grid) <= r * r
    assert longest_diameter_mm(ball, np.diag([0.5, 0.5, 1.0])) == pytest.approx(80.0)  # along k


def test_summary_counts_per_class_and_decision() -> None:
    case = make_case(seed=5, n_candidates=18)
    res = refine(case.ct, case.labels, affine=case.affine)
    s = res.report["summary"]
    lesions = res.report["lesions"]
    assert s["candidates"] == len(lesions) == len(case.expected)
    assert sum(s["by_decision"].values()) == s["candidates"]
    assert s["kept"] + s["removed"] + s["relabelled"] == s["candidates"]
    for name, counts in s["by_class"].items():
        for decision, n in counts.items():
            assert n == sum(1 for x in lesions if x["class"] == name and x["decision"] == decision)
    assert s["pancreas_voxels"] == int((case.labels == 1).sum())
    assert s["duct_voxels"] == int((case.labels == 2).sum())
    assert s["pancreas_empty"] is False and s["notes"] == []
    assert [x["id"] for x in lesions] == list(range(1, len(lesions) + 1))
    assert {x["class"] for x in lesions} <= set(CLASS_NAMES[3:])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_synthetic_case_decisions_match_what_was_placed(seed) -> None:
    case = make_case(seed=seed, n_candidates=18, spacing=(0.7, 0.7, 2.0))
    res = refine(case.ct, case.labels, affine=case.affine)
    for placed in case.expected:
        hits = [
            x for x in res.report["lesions"]
            if x["class_id"] == placed["class_id"]
            and all(lo <= c <= hi for c, lo, hi in zip(placed["centre"], x["bbox_voxel"]["min"], x["bbox_voxel"]["max"], strict=True))
        ]  # fmt: skip
        assert len(hits) == 1, placed
        assert hits[0]["decision"] == placed["decision"], (placed, hits[0]["reason"])


@pytest.mark.parametrize(
    ("offset", "n6", "n18", "n26"),
    [((1, 0, 0), 1, 1, 1), ((1, 1, 0), 2, 1, 1), ((1, 1, 1), 2, 2, 1), ((2, 0, 0), 2, 2, 2)],
)
def test_components_follow_the_connectivity(volume, offset, n6, n18, n26) -> None:
    v = volume().paint((S(2, 20), S(2, 20), S(2, 20)), 1)
    v.labels[8, 8, 8] = 3
    v.labels[8 + offset[0], 8 + offset[1], 8 + offset[2]] = 3
    for connectivity, n in ((6, n6), (18, n18), (26, n26)):
        res = refine(v.ct, v.labels, connectivity=connectivity)
        assert res.report["summary"]["candidates"] == n
        assert res.report["connectivity"] == connectivity
