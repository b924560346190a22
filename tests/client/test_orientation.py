"""Reorientation to canonical RAS and back is exact for all 48 axis orders and directions."""

from __future__ import annotations

import itertools

import nibabel as nib
import numpy as np
import pytest
from eanno_client.orientation import canonical_to_input_voxel, from_canonical, to_canonical

ORIENTATIONS = [
    "".join(p[f] for p, f in zip(perm, flips, strict=True))
    for perm in itertools.permutations(("LR", "PA", "IS"))
    for flips in itertools.product((0, 1), repeat=3)
]


def affine_for(codes: str, spacing=(0.8, 1.1, 2.5), origin=(-40.0, 12.0, 7.5)) -> np.ndarray:
    """An affine whose voxel axes point along `codes` (e.g. 'PLI') with the given spacing."""
    a = np.eye(4)
    for axis, code in enumerate(codes):
        world = "RLAPSI".index(code) // 2
        a[:3, axis] = 0.0
        a[world, axis] = spacing[axis] * (1.0 if code in "RAS" else -1.0)
    a[:3, 3] = origin
    return a


@pytest.mark.parametrize("codes", ORIENTATIONS)
def test_round_trip_and_world_positions(codes):
    rng = np.random.default_rng(len(codes) + ORIENTATIONS.index(codes))
    data = rng.integers(0, 6, size=(5, 6, 7)).astype(np.uint8)
    affine = affine_for(codes)
    can = to_canonical(data, affine)
    assert nib.aff2axcodes(can.affine) == ("R", "A", "S")
    np.testing.assert_array_equal(from_canonical(can.data, can), data)
    # every voxel keeps its world position: value at canonical index c == value at input index M c
    m = canonical_to_input_voxel(can, affine)
    idx = np.indices(can.data.shape).reshape(3, -1)
    mapped = np.rint(m[:3, :3] @ idx + m[:3, 3:4]).astype(int)
    np.testing.assert_array_equal(data[tuple(mapped)], can.data[tuple(idx)])
    np.testing.assert_allclose(
        affine @ np.vstack([mapped, np.ones(mapped.shape[1])]),
        can.affine @ np.vstack([idx, np.ones(idx.shape[1])]),
        atol=1e-9,
    )
    # matches nibabel's own as_closest_canonical
    ref = nib.as_closest_canonical(nib.Nifti1Image(data, affine))
    np.testing.assert_array_equal(np.asarray(ref.dataobj), can.data)
    np.testing.assert_allclose(ref.affine, can.affine)


def test_from_canonical_rejects_a_wrong_shape():
    can = to_canonical(np.zeros((3, 4, 5), np.uint8), affine_for("LPS"))
    with pytest.raises(ValueError, match="not the canonical shape"):
        from_canonical(np.zeros((5, 4, 3), np.uint8), can)
