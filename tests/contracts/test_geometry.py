"""The window's geometry (CONTRACTS.md "Sliding window") checked by its properties, not by its own formulas."""

from __future__ import annotations

import numpy as np
import pytest
from eanno_contracts.geometry import gaussian_weights, pad_widths, target_shape, tile_starts
from hypothesis import assume, given
from hypothesis import strategies as st


@given(p=st.integers(1, 160), extra=st.integers(0, 400), step=st.floats(0.05, 1.0))
def test_tile_starts_cover_the_axis_with_the_step(p: int, extra: int, step: float) -> None:
    assume(step * p >= 2)  # a step under 2 voxels can round two starts onto one (a wasted, harmless patch)
    n = p + extra
    starts = tile_starts(n, p, step)
    assert starts[0] == 0 and starts[-1] == n - p
    assert starts == sorted(set(starts))
    covered = np.zeros(n, bool)
    for s in starts:
        covered[s : s + p] = True
    assert covered.all()
    gaps = np.diff(starts)
    # linspace spreads k starts evenly; rounding moves each by at most half a voxel
    assert (gaps <= step * p + 1).all()
    # and k is the fewest starts whose even spread keeps within the step
    if len(starts) > 2:
        assert (n - p) / (len(starts) - 2) > step * p


def test_tile_starts_known_axes_and_errors() -> None:
    assert tile_starts(32, 32, 0.5) == [0]
    assert tile_starts(40, 16, 0.5) == [0, 8, 16, 24]
    assert tile_starts(100, 32, 0.5) == [0, 14, 27, 41, 54, 68]
    with pytest.raises(ValueError, match="shorter than the patch"):
        tile_starts(10, 32, 0.5)
    with pytest.raises(ValueError, match="step"):
        tile_starts(40, 16, 0.0)


def test_gaussian_weights_shape_centre_sigma_and_symmetry() -> None:
    w = gaussian_weights((32, 16, 9))
    assert w.dtype == np.float32 and w.shape == (32, 16, 9)
    assert w.max() == pytest.approx(1.0) and w.min() > 0
    np.testing.assert_allclose(w, w[::-1, ::-1, ::-1], rtol=1e-6)
    # odd axis: the centre voxel is the maximum along it; one sigma (9/8) from it the weight is exp(-1/2)
    line = w[15, 7, :].astype(np.float64) / w[15, 7, 4]
    assert line.argmax() == 4
    np.testing.assert_allclose(line[5], np.exp(-0.5 * (1 / (9 / 8)) ** 2), rtol=1e-6)
    # separable: the 3D map is the outer product of its axes
    np.testing.assert_allclose(
        w,
        np.einsum("i,j,k->ijk", w[:, 7, 4] / w[15, 7, 4], w[15, :, 4] / w[15, 7, 4], w[15, 7, :]),
        rtol=1e-5,
    )


def test_gaussian_weights_are_never_zero_even_far_from_the_centre() -> None:
    w = gaussian_weights((400, 1, 1))  # 200 voxels from the centre = 4 sigma... and beyond for float32
    assert (w > 0).all()


def test_target_shape_rounds_and_keeps_one_voxel() -> None:
    assert target_shape((100, 100, 10), (1.0, 0.8, 5.0), (2.0, 2.0, 2.0)) == (50, 40, 25)
    assert target_shape((3, 3, 3), (0.1, 0.1, 0.1), (2.0, 2.0, 2.0)) == (1, 1, 1)
    assert target_shape((5, 5, 5), (1.0, 1.0, 1.0), (2.0, 2.0, 2.0)) == (2, 2, 2)  # 2.5 -> 2: ties to even
    with pytest.raises(ValueError, match="3 sizes"):
        target_shape((5, 5), (1.0, 1.0), (2.0, 2.0))


def test_pad_widths_reach_the_patch_with_the_odd_voxel_after() -> None:
    assert pad_widths((10, 20, 5), (16, 16, 8)) == [(3, 3), (0, 0), (1, 2)]
