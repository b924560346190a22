"""Each rule on hand-built volumes whose answer is obvious, at the exact boundaries."""

from __future__ import annotations

import numpy as np
import pytest
from eanno_postproc import Rules, refine

PANCREAS, DUCT, PDAC, CYST, PNET = 1, 2, 3, 4, 5
S = slice


def decisions(result) -> list[str]:
    return [lesion["decision"] for lesion in result.report["lesions"]]


# --- step 1: outside the pancreas ------------------------------------------------------------


@pytest.mark.parametrize("cls", [PDAC, CYST, PNET])
def test_touching_is_kept_and_one_voxel_beyond_the_dilation_is_removed(volume, cls) -> None:
    v = volume().paint((S(4, 10), S(4, 10), S(4, 10)), PANCREAS)
    v.paint((S(10, 12), S(6, 8), S(6, 8)), cls)  # face-adjacent at i = 10
    v.paint(
        (S(4, 6), S(6, 8), S(11, 13)), cls
    )  # k = 11: one empty voxel (k = 10) between, outside the dilation
    res = refine(v.ct, v.labels)
    by_start = {tuple(x["bbox_voxel"]["min"]): x for x in res.report["lesions"]}
    assert by_start[(10, 6, 6)]["decision"] == "kept"
    assert by_start[(10, 6, 6)]["touches_pancreas"] is True
    assert by_start[(4, 6, 11)]["decision"] == "removed_outside_pancreas"
    assert res.labels[4, 6, 11] == 0 and res.removed[4, 6, 11] == cls
    assert res.labels[10, 6, 6] == cls and res.removed[10, 6, 6] == 0


def test_a_wider_dilation_reaches_one_voxel_further(volume) -> None:
    v = volume().paint((S(4, 10), S(4, 10), S(4, 10)), PANCREAS).paint((S(4, 6), S(6, 8), S(11, 13)), PDAC)
    assert decisions(refine(v.ct, v.labels)) == ["removed_outside_pancreas"]
    wide = Rules.from_dict({"pancreas_dilation_voxels": 2})
    assert decisions(refine(v.ct, v.labels, rules=wide)) == ["kept"]


def test_touching_the_duct_alone_counts_as_touching_the_pancreas(volume) -> None:
    v = volume().paint((S(4, 10), S(7, 8), S(7, 8)), DUCT).paint((S(10, 12), S(7, 8), S(7, 8)), PDAC)
    v.paint((S(4, 10), S(12, 20), S(12, 20)), PANCREAS)  # parenchyma elsewhere, not touching the lesion
    (lesion,) = refine(v.ct, v.labels).report["lesions"]
    assert lesion["touches_pancreas"] is True
    assert lesion["decision"] == "kept"


def test_with_no_parenchyma_the_ratio_is_undefined_and_relabels(volume) -> None:
    v = volume().paint((S(4, 10), S(7, 8), S(7, 8)), DUCT).paint((S(10, 12), S(7, 8), S(7, 8)), PDAC)
    (lesion,) = refine(v.ct, v.labels).report["lesions"]
    assert lesion["volume_ratio_percent"] is None
    assert lesion["decision"] == "relabelled_volume_ratio"


@pytest.mark.parametrize(
    ("connectivity", "edge", "corner"),
    [
        (6, "removed_outside_pancreas", "removed_outside_pancreas"),
        (18, "kept", "removed_outside_pancreas"),
        (26, "kept", "kept"),
    ],
)
def test_touching_by_an_edge_or_a_corner_follows_the_connectivity(volume, connectivity, edge, corner) -> None:
    v = volume().paint((S(4, 10), S(4, 10), S(4, 10)), PANCREAS)
    v.paint((S(10, 11), S(10, 11), S(6, 7)), CYST)  # shares an edge with the pancreas block
    v.paint((S(10, 11), S(12, 13), S(10, 11)), PNET)  # not touching at all
    v.paint((S(3, 4), S(3, 4), S(3, 4)), PDAC)  # shares only a corner
    res = refine(v.ct, v.labels, connectivity=connectivity)
    got = {x["class_id"]: x["decision"] for x in res.report["lesions"]}
    assert got == {CYST: edge, PNET: "removed_outside_pancreas", PDAC: corner}


# --- step 2: volume ratio --------------------------------------------------------------------


@pytest.mark.parametrize(("cls", "limit"), [(PDAC, 133), (CYST, 83), (PNET, 46)])
@pytest.mark.parametrize("extra", [0, 1])
def test_volume_ratio_at_the_limit_is_kept_and_one_voxel_more_is_relabelled(
    volume, cls, limit, extra
) -> None:
    # 1000 parenchyma voxels, so the lesion's ratio is voxels / 10 percent: exactly the limit, then above it.
    v = volume((30, 14, 14)).paint((S(2, 12), S(2, 12), S(2, 12)), PANCREAS)
    v.paint_count((12, 2, 2), (14, 10, 10), 10 * limit + extra, cls)
    res = refine(v.ct, v.labels)
    (lesion,) = res.report["lesions"]
    assert lesion["voxels"] == 10 * limit + extra
    assert lesion["volume_ratio_percent"] == pytest.approx(limit + extra / 10)
    if extra:
        assert lesion["decision"] == "relabelled_volume_ratio"
        assert lesion["compared"] == {"value": pytest.approx(limit + 0.1), "limit": limit}
        assert np.all(res.labels[v.labels == cls] == PANCREAS)
        assert np.all(res.removed[v.labels == cls] == cls)
    else:
        assert lesion["decision"] == "kept"
        assert np.all(res.labels[v.labels == cls] == cls)


def test_ratio_uses_the_parenchyma_before_relabelling(volume) -> None:
    # Two PNETs of 470 voxels (47% > 46%) on either side of 1000 parenchyma voxels. Had the first one's
    # relabelling counted, the second would be 470 / 1470 = 32% and kept.
    v = volume((30, 14, 14)).paint((S(10, 20), S(2, 12), S(2, 12)), PANCREAS)
    v.paint_count((20, 2, 2), (5, 10, 10), 470, PNET)
    v.paint((S(5, 10), S(2, 12), S(2, 12)), PNET)
    v.labels[5, 2:5, 2:12] = 0  # 500 - 30 = 470 voxels, row i = 9 full against the pancreas
    res = refine(v.ct, v.labels)
    assert [x["voxels"] for x in res.report["lesions"]] == [470, 470]
    assert decisions(res) == ["relabelled_volume_ratio"] * 2


# --- step 3: duct ----------------------------------------------------------------------------


def duct_scene(volume, cls: int, gap: int):
    """Pancreas block with a duct along i at (j, k) = (8, 8); a lesion `gap` voxels from it along j."""
    v = volume((20, 18, 18)).paint((S(2, 16), S(2, 16), S(2, 16)), PANCREAS)
    v.paint((S(2, 16), S(8, 9), S(8, 9)), DUCT)
    j = 9 + gap
    return v.paint((S(6, 9), S(j, j + 2), S(7, 10)), cls)


@pytest.mark.parametrize(
    ("cls", "gap", "expected"),
    [
        (CYST, 0, "relabelled_duct"),
        (PNET, 0, "relabelled_duct"),
        (PDAC, 0, "kept"),  # PDAC is exempt
        (CYST, 1, "kept"),
        (PNET, 1, "kept"),
    ],
)
def test_duct_rule(volume, cls, gap, expected) -> None:
    res = refine(*(lambda v: (v.ct, v.labels))(duct_scene(volume, cls, gap)))
    (lesion,) = res.report["lesions"]
    assert lesion["touches_duct"] is (gap == 0)
    assert lesion["decision"] == expected


def test_duct_classes_come_from_the_rules(volume) -> None:
    v = duct_scene(volume, PDAC, 0)
    rules = Rules.from_dict({"duct_classes": ["pdac", "cyst", "pnet"]})
    assert decisions(refine(v.ct, v.labels, rules=rules)) == ["relabelled_duct"]


# --- step 4: contrast ------------------------------------------------------------------------

WINDOWS = {PDAC: (-206, 185), CYST: (-33, 222), PNET: (-16, 270)}


@pytest.mark.parametrize("cls", [PDAC, CYST, PNET])
@pytest.mark.parametrize(
    ("edge", "step", "expected"),
    [
        (0, 0, "kept"),
        (1, 0, "kept"),
        (0, -1, "relabelled_contrast"),
        (1, 1, "relabelled_contrast"),
    ],
)
def test_mean_hu_at_the_window_edge_is_kept_and_one_hu_beyond_is_relabelled(
    volume, cls, edge, step, expected
) -> None:
    hu = WINDOWS[cls][edge] + step
    v = (
        volume()
        .paint((S(4, 12), S(4, 12), S(4, 12)), PANCREAS)
        .paint((S(6, 9), S(6, 9), S(6, 9)), cls, hu=hu)
    )
    res = refine(v.ct, v.labels)
    (lesion,) = res.report["lesions"]
    assert lesion["hu_mean"] == hu
    assert lesion["decision"] == expected
    if expected != "kept":
        assert lesion["compared"] == {"value": hu, "limit": list(WINDOWS[cls])}


def test_contrast_uses_the_clipped_hu(volume) -> None:
    # Half at 3000 HU, half at -2000: clipped to +-1000 the mean is 0 (inside the cyst window); unclipped 500.
    v = volume().paint((S(4, 12), S(4, 12), S(4, 12)), PANCREAS)
    v.paint((S(6, 8), S(6, 8), S(6, 8)), CYST, hu=3000).paint((S(6, 8), S(6, 8), S(6, 7)), CYST, hu=-2000)
    (lesion,) = refine(v.ct, v.labels).report["lesions"]
    assert (lesion["hu_mean"], lesion["hu_min"], lesion["hu_max"]) == (0.0, -1000.0, 1000.0)
    assert lesion["decision"] == "kept"


# --- order -----------------------------------------------------------------------------------


def test_the_first_rule_in_the_papers_order_decides(volume) -> None:
    v = volume((30, 14, 14)).paint((S(2, 12), S(2, 12), S(2, 12)), PANCREAS)
    v.paint_count((12, 2, 2), (14, 10, 10), 600, PNET)  # 60% > 46% and HU 500 > 270
    v.ct[v.labels == PNET] = 500
    v.paint((S(20, 22), S(12, 14), S(12, 14)), CYST, hu=-500)  # outside and out of window
    res = refine(v.ct, v.labels)
    got = {x["class_id"]: x["decision"] for x in res.report["lesions"]}
    assert got == {PNET: "relabelled_volume_ratio", CYST: "removed_outside_pancreas"}
