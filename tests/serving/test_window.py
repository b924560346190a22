"""The numpy sliding window against scipy (resampling) and a torch reading of CONTRACTS.md (its geometry: tests/contracts)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
from eanno_contracts.geometry import target_shape
from eanno_contracts.labels import CLASS_NAMES
from eanno_contracts.meta import WindowSpec
from eanno_serving.requests import check_spacing
from eanno_serving.window import SlidingWindow, resample_linear, sliding_window

from .conftest import torch_reference

META = {
    "classes": list(CLASS_NAMES),
    "spacing": [1.5, 1.5, 2.0],
    "patch_size": [16, 16, 8],
    "intensity": {"clip": [-1000, 1000], "mean": 40.0, "std": 200.0},
    "theta": 0.003,
    "step": 0.5,
}
SPEC = WindowSpec.from_meta(META)


def toy_net(batch: np.ndarray) -> np.ndarray:
    """A deterministic, position-independent 'network': softmax of per-class affine maps of the intensity."""
    x = batch[:, 0]
    logits = np.stack(
        [
            a * x + b
            for a, b in zip([-1.0, 0.5, 0.2, 1.5, -0.7, 0.9], [0.1, 0.0, -1, -2, 0.3, -0.5], strict=True)
        ],
        1,
    )
    e = np.exp(logits - logits.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize(
    "shape,out", [((7, 5, 3), (13, 4, 3)), ((1, 6, 2), (3, 2, 5)), ((9, 9, 9), (9, 9, 9))]
)
def test_resample_equals_scipy_zoom_order1_grid_mode_false(shape, out) -> None:
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    zoom = [o / n for o, n in zip(out, shape, strict=True)]
    expected = scipy.ndimage.zoom(x, zoom, order=1, grid_mode=False, mode="nearest")
    assert expected.shape == out
    np.testing.assert_allclose(resample_linear(x, out), expected, atol=1e-5)


@pytest.mark.parametrize(
    "shape,out", [((40, 9, 7), (97, 20, 15)), ((97, 20, 15), (40, 9, 7)), ((3, 30, 2), (50, 1, 6))]
)
def test_resample_in_many_threaded_slabs_equals_scipy(monkeypatch, shape, out) -> None:
    import eanno_serving.window as W

    monkeypatch.setattr(W, "_SLAB_VOXELS", 2 * out[1] * out[2] + 1)  # 2 output rows per slab: many slabs
    x = np.random.default_rng(1).random(shape, dtype=np.float32)
    expected = scipy.ndimage.zoom(
        x, [o / n for o, n in zip(out, shape, strict=True)], order=1, grid_mode=False, mode="nearest"
    )
    for threads in (1, 3):
        np.testing.assert_allclose(resample_linear(x, out, threads=threads), expected, atol=1e-5)


def test_resample_reads_int16_slab_by_slab_and_clips_before_interpolating() -> None:
    ct = np.random.default_rng(3).integers(-2000, 3000, size=(30, 11, 9)).astype(np.int16)
    out = (12, 20, 4)
    clipped = np.clip(ct.astype(np.float32), -1000, 1000)
    expected = scipy.ndimage.zoom(
        clipped, [o / n for o, n in zip(out, ct.shape, strict=True)], order=1, grid_mode=False, mode="nearest"
    )
    got = resample_linear(ct, out, clip=(-1000, 1000))
    assert (
        got.dtype == np.float32 and got.min() >= -1000.001 and got.max() <= 1000.001
    )  # lerp rounding: 1 ulp
    np.testing.assert_allclose(got, expected, atol=1e-3)


def test_resample_into_float16_writes_in_place_and_flushes_values_below_its_normal_range() -> None:
    x = np.random.default_rng(2).random((6, 5, 4), dtype=np.float32)
    x[0] = 1e-6  # a float16 subnormal after any interpolation
    dest = np.full((2, 11, 9, 7), np.nan, dtype=np.float16)
    got = resample_linear(x, (11, 9, 7), out=dest[1])
    assert np.shares_memory(got, dest[1])
    assert np.isnan(dest[0]).all() and not np.isnan(dest[1]).any()
    ref = resample_linear(x, (11, 9, 7))
    tiny = np.finfo(np.float16).tiny
    assert (dest[1][ref < tiny] == 0).all() and (dest[1][0] == 0).all()
    big = ref >= tiny
    np.testing.assert_allclose(dest[1][big].astype(np.float32), ref[big], rtol=1e-3)


def test_resample_into_float16_rounds_as_numpy_does_and_keeps_nan_and_negatives_on_numpys_path() -> None:
    rng = np.random.default_rng(4)
    x = rng.random((20, 7, 6), dtype=np.float32) ** 8  # probabilities: many values near 0
    x[x < 2**-14] = 0
    got = resample_linear(x, (45, 15, 11), out=np.empty((45, 15, 11), np.float16))
    numpy_cast = resample_linear(x, (45, 15, 11)).astype(np.float16)
    numpy_cast[numpy_cast < np.float16(2**-14)] = 0
    differ = got.view(np.uint16) != numpy_cast.view(np.uint16)
    # The only difference allowed: a value just below 2**-14 that numpy rounds up to it, and we flush.
    assert (numpy_cast[differ] == np.float16(2**-14)).all() and (got[differ] == 0).all()
    assert differ.mean() < 1e-3
    odd = x.copy()
    odd[0, 0, 0], odd[5, 3, 2] = np.nan, -0.5  # off the fast path: numpy's cast keeps NaN and negatives
    slow = resample_linear(odd, (20, 7, 6), out=np.empty((20, 7, 6), np.float16))
    assert np.isnan(slow[0, 0, 0]) and slow[5, 3, 2] == np.float16(-0.5)


def test_usable_cores_is_the_affinity_capped_by_a_cgroup_quota(tmp_path) -> None:
    import os

    from eanno_serving.cores import usable_cores

    affinity = len(os.sched_getaffinity(0))
    quota = tmp_path / "cpu.max"
    quota.write_text("max 100000\n")
    assert usable_cores(str(quota)) == affinity
    quota.write_text("150000 100000\n")  # docker --cpus 1.5
    assert usable_cores(str(quota)) == 1
    assert usable_cores(str(tmp_path / "absent")) == affinity


def test_resample_rejects_a_wrong_out_shape_and_an_empty_input() -> None:
    with pytest.raises(ValueError, match="3 sizes >= 1"):
        resample_linear(np.zeros((2, 0, 2), np.float32), (3, 3, 3))
    with pytest.raises(ValueError, match="out has shape"):
        resample_linear(np.zeros((2, 2, 2), np.float32), (3, 3, 3), out=np.empty((3, 3, 2), np.float32))


@pytest.mark.parametrize("bad", [[1, 1], [1, np.nan, 1], [1, 0, 1], [1, -2, 1], [np.inf, 1, 1]])
def test_invalid_spacing_is_refused(bad) -> None:
    with pytest.raises(ValueError, match="invalid spacing"):
        check_spacing(bad)


def test_meta_with_a_missing_key_names_it() -> None:
    with pytest.raises(ValueError, match="patch_size"):
        WindowSpec.from_meta({k: v for k, v in META.items() if k != "patch_size"})


@pytest.mark.parametrize(
    "shape,spacing",
    [
        ((40, 33, 17), (0.8, 0.8, 1.5)),  # resampled down, several tiles
        ((9, 10, 30), (1.5, 1.5, 2.0)),  # no resampling, padded axes
        ((20, 20, 5), (1.5, 1.6, 3.1)),
    ],
)
def test_window_matches_the_torch_reading_of_the_contract(shape, spacing) -> None:
    rng = np.random.default_rng(sum(shape))
    volume = scipy.ndimage.gaussian_filter(rng.normal(0, 400, shape), 2).astype(np.int16)
    got = sliding_window(volume, spacing, SPEC, toy_net, batch_size=3)
    ref = torch_reference(volume, spacing, META, toy_net)
    assert got.shape == (6, *shape) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=2e-5)
    np.testing.assert_allclose(got.sum(0), 1.0, atol=1e-5)
    assert target_shape(shape, spacing, META["spacing"]) != shape or shape == (9, 10, 30)


def test_float16_output_stays_within_half_precision_of_float32() -> None:
    volume = np.random.default_rng(3).normal(0, 300, (30, 30, 12)).astype(np.int16)
    sw = SlidingWindow(volume, (1.0, 1.0, 1.0), SPEC)
    for starts, batch in sw.batches(4):
        sw.add(starts, toy_net(batch))
    full, half = sw.result(np.float32), sw.result(np.float16)
    assert half.dtype == np.float16
    assert np.abs(full - half.astype(np.float32)).max() <= 2.5e-4  # fp16 spacing near 0.5 is 2.4e-4


def test_wrong_network_output_shape_is_a_clear_error() -> None:
    sw = SlidingWindow(np.zeros((16, 16, 8), np.int16), (1.5, 1.5, 2.0), SPEC)
    starts, batch = next(sw.batches(2))
    with pytest.raises(ValueError, match="expected"):
        sw.add(starts, np.zeros((len(starts), 5, 16, 16, 8), np.float32))
