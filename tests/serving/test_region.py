"""Region first (eanno_serving.region, .handoff) against today's full-resolution path, voxel for voxel.

The full path: the window's probabilities resampled to the whole input grid, refine over the whole grid.
The region path: the box from the model grid, probabilities resampled inside it only, refine on the box,
outside candidates from the model grid. Inside the box labels, removed map and the box's lesion records
must be identical; outside it the full path may only hold rule-1 removals (background in labels).
Whatever model is run, the comparison is against the full path of the same run, never fixed counts.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from eanno_contracts.answer import full_size
from eanno_postproc import load_rules
from eanno_serving.annotate import annotate
from eanno_serving.handoff import box_probs, handoff
from eanno_serving.region import find_region, nearest_blocks
from eanno_serving.window import SlidingWindow, resample_linear

from .conftest import TINY_META, inprocess_window, phantom

REAL_CT = Path(__file__).resolve().parents[3] / "shared" / "data" / "ct-real-small" / "example_ct_sm.nii.gz"
MODEL = {"name": "tiny", "version": "test", "theta": TINY_META["theta"], "spacing": TINY_META["spacing"]}
CASES = [
    ((48, 44, 24), (0.9, 0.9, 1.6), 1),
    ((30, 40, 18), (1.5, 1.5, 2.0), 2),
    ((20, 26, 30), (2.0, 1.2, 1.0), 3),
]
# Every flip of the axes, and two axis orders: the orientations a canonical volume can arrive in.
ORIENTATIONS = [
    (flips, order) for flips in itertools.product((False, True), repeat=3) for order in ((0, 1, 2),)
]
ORIENTATIONS += [((False, False, False), (2, 0, 1)), ((True, False, True), (1, 2, 0))]


def _window(volume: np.ndarray, spacing) -> SlidingWindow:
    return inprocess_window(volume, spacing)


def compare(volume: np.ndarray, spacing, theta: float | None = None) -> dict:
    """Run both paths on one window; assert the region path equals the full one; return a few figures."""
    sw = _window(volume, spacing)
    rules = load_rules(None)
    theta = MODEL["theta"] if theta is None else theta
    affine = np.diag([*spacing, 1.0])
    full = annotate(
        volume,
        np.asarray(spacing),
        sw.result(np.float16),
        MODEL,
        affine=affine,
        threshold=np.array([theta], np.float32),
    )
    h = handoff(sw, volume, np.float16, theta, rules, affine)
    probs = box_probs(h.coarse, h.box, h.region) if h.volume.size else None
    got = annotate(
        h.volume,
        np.asarray(spacing),
        probs,
        MODEL,
        affine=affine,
        box=h.box,
        outside=h.region,
        threshold=np.array([theta], np.float32),
    )
    if probs is not None:  # the box's probabilities from the model-grid crop: bit for bit the whole grid's
        whole = sw.result(np.float16)[
            (slice(None), *(slice(int(a), int(b)) for a, b in zip(*h.box, strict=True)))
        ]
        assert probs.tobytes() == whole.tobytes()
    sl = tuple(slice(int(a), int(b)) for a, b in zip(*h.box, strict=True))
    inside = np.zeros(volume.shape, bool)
    inside[sl] = True
    if inside.any():
        np.testing.assert_array_equal(got.labels, full.labels[sl])
        np.testing.assert_array_equal(got.removed, full.removed[sl])
    # Outside the box the full path keeps nothing (every candidate there is a rule-1 removal).
    assert not full.labels[~inside].any(), "the full path labels something outside the box"
    lo, hi = h.box
    boxed = [
        r
        for r in full.report["lesions"]
        if all(lo[a] <= r["bbox_voxel"]["min"][a] and r["bbox_voxel"]["max"][a] < hi[a] for a in range(3))
    ]
    mine = [r for r in got.report["lesions"] if r.get("grid") != "model"]
    assert len(mine) == len(boxed)
    for a, b in zip(mine, boxed, strict=True):
        for key in (
            "class_id",
            "voxels",
            "decision",
            "reason",
            "new_class",
            "touches_pancreas",
            "touches_duct",
            "bbox_voxel",
            "hu_min",
            "hu_max",
            "prob_max",
        ):
            assert a[key] == b[key], key
        np.testing.assert_allclose(a["centroid_voxel"], b["centroid_voxel"], atol=1e-9)
        np.testing.assert_allclose(a["centroid_mm"], b["centroid_mm"], atol=1e-6)
        assert a["hu_mean"] == pytest.approx(b["hu_mean"], abs=1e-9)
    # Every full-path candidate outside the box was removed by rule 1 and shows up from the model grid.
    rest = [r for r in full.report["lesions"] if r not in boxed]
    assert all(r["decision"] == "removed_outside_pancreas" for r in rest)
    assert got.report["summary"]["pancreas_voxels"] == full.report["summary"]["pancreas_voxels"]
    assert got.report["summary"]["duct_voxels"] == full.report["summary"]["duct_voxels"]
    assert got.report["summary"]["kept"] == full.report["summary"]["kept"]
    # The removed map the client draws: box + blocks; blocks never enter the box.
    removed = full_size(volume.shape, np.zeros((2, 3), np.int64), np.zeros((0, 0, 0), np.uint8), h.blocks)
    assert not removed[sl].any()
    outside = [r for r in got.report["lesions"] if r.get("grid") == "model"]
    assert len(outside) == len(h.region["lesions"])
    assert sum(r["voxels"] for r in outside) == int(np.count_nonzero(removed))
    print(
        f"box {inside.mean():.1%} of the volume, {len(boxed)} candidates in it, {len(rest)} outside (full grid), {len(outside)} outside (model grid)"
    )
    return {"box_fraction": inside.mean(), "boxed": len(boxed), "rest": len(rest), "outside": len(outside)}


@pytest.mark.parametrize("flips,order", ORIENTATIONS)
@pytest.mark.parametrize("shape,spacing,seed", CASES)
def test_region_first_equals_the_full_grid_inside_the_box(shape, spacing, seed, flips, order) -> None:
    volume = phantom(shape, seed)
    volume = np.ascontiguousarray(np.flip(volume, [a for a in range(3) if flips[a]]).transpose(order))
    spacing = tuple(spacing[a] for a in order)
    figures = compare(volume, spacing)
    assert figures["boxed"] > 0, "the phantom has no candidate in the box: the test would prove nothing"


def test_a_sensitive_threshold_still_matches() -> None:
    """Speckle everywhere (theta far below the model's): the box grows until no component is cut."""
    shape, spacing, seed = CASES[0]
    compare(phantom(shape, seed), spacing, theta=1e-4)


def test_no_pancreas_skips_full_resolution_and_reports_every_candidate_from_the_model_grid() -> None:
    volume = np.full((40, 36, 20), 40, np.int16)
    volume[5:10, 5:10, 5:10] = -100  # a lesion-like blob, no bright organ anywhere
    sw = _window(volume, (1.5, 1.5, 2.0))
    h = handoff(sw, volume, np.float16, MODEL["theta"], load_rules(None), np.diag([1.5, 1.5, 2.0, 1.0]))
    assert (h.box[0] == h.box[1]).all() and h.coarse.size == 0 and h.volume.size == 0
    compare(volume, (1.5, 1.5, 2.0))


@pytest.mark.skipif(not REAL_CT.exists(), reason=f"{REAL_CT} is absent (the real CT lives in ../shared/data)")
def test_real_ct_region_first_equals_the_full_grid() -> None:
    nib = pytest.importorskip("nibabel")
    img = nib.as_closest_canonical(nib.load(str(REAL_CT)))
    volume = np.asarray(img.dataobj).astype(np.int16)
    spacing = tuple(float(s) for s in img.header.get_zooms()[:3])
    compare(volume, spacing)


def test_resample_part_is_bit_identical_to_the_whole() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((9, 11, 7), dtype=np.float32)
    for shape in [(30, 25, 7), (9, 40, 3), (5, 11, 20)]:
        whole = resample_linear(x, shape, out=np.empty(shape, np.float16))
        part = (slice(2, shape[0] - 1), slice(1, shape[1]), slice(0, max(1, shape[2] - 2)))
        got = resample_linear(x, shape, out=np.empty([p.stop - p.start for p in part], np.float16), part=part)
        assert got.tobytes() == whole[part].tobytes()


def test_box_covers_every_place_an_input_voxel_can_be_pancreas() -> None:
    """Brute force on random coarse maps: every input voxel that the full path calls pancreas/duct/lesion
    and that touches the pancreas lies inside the box."""
    rng = np.random.default_rng(1)
    for _ in range(20):
        p = rng.dirichlet(np.ones(6) * 0.3, size=(6, 5, 4)).transpose(3, 0, 1, 2).astype(np.float32)
        p[1:3] *= rng.random() < 0.8
        p[0] = 1 - p[1:].sum(0)
        shape = (13, 11, 9)
        region = find_region(p, shape, 0.1, 1)
        full = np.stack([resample_linear(c, shape) for c in p])
        pancreas = (full[1:3].max(0) > full[0]) & (full[3:].max(0) < 0.1)
        if region.empty:
            assert not pancreas.any()
            continue
        inside = np.zeros(shape, bool)
        inside[region.slices] = True
        assert not (pancreas & ~inside).any()


def test_nearest_blocks_tile_the_input_grid() -> None:
    model, grid = (5, 7, 3), (12, 20, 3)
    coords = np.nonzero(np.ones(model, bool))
    blocks = nearest_blocks(coords, model, grid)
    out = np.zeros(grid, np.int32)
    for a0, b0, a1, b1, a2, b2 in blocks.tolist():
        out[a0:b0, a1:b1, a2:b2] += 1
    assert (out == 1).all()


def test_box_probabilities_from_the_crop_equal_the_whole_grid_at_every_edge() -> None:
    """box_probs on boxes touching each end of each axis, with equal, finer and coarser grids."""
    from eanno_serving.handoff import coarse_crop

    rng = np.random.default_rng(5)
    for model_shape, shape in [((7, 5, 4), (7, 5, 4)), ((6, 5, 4), (17, 13, 9)), ((9, 8, 6), (5, 8, 3))]:
        coarse = rng.random((6, *model_shape), dtype=np.float32)
        whole = np.stack([resample_linear(c, shape, out=np.empty(shape, np.float16)) for c in coarse])
        for start, stop in [
            ((0, 0, 0), shape),
            ((shape[0] - 1, 0, shape[2] - 1), shape),
            ((0, 1, 0), (1, 2, 1)),
        ]:
            box = np.array([start, stop])
            crop = coarse_crop(box, model_shape, shape)
            region = {
                "shape": list(shape),
                "model_shape": list(model_shape),
                "coarse_start": [c.start for c in crop],
                "dtype": "float16",
            }
            got = box_probs(np.ascontiguousarray(coarse[(slice(None), *crop)]), box, region)
            sl = tuple(slice(a, b) for a, b in zip(start, stop, strict=True))
            assert got.tobytes() == whole[(slice(None), *sl)].tobytes(), (model_shape, shape, start, stop)
