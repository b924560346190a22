"""eanno_client.fastio: the fast paths give exactly what the plain nibabel / numpy paths give."""

from __future__ import annotations

import gzip
import itertools

import nibabel as nib
import numpy as np
import pytest
from eanno_client.fastio import igzip, load_nifti, reorder, write_nifti
from eanno_client.orientation import from_canonical, to_canonical
from nibabel import orientations as ornts


@pytest.mark.parametrize("order", ["C", "F"])
def test_reorder_equals_numpys_copy_for_any_strides(order) -> None:
    a = np.random.default_rng(0).integers(-1000, 1000, (37, 29, 41)).astype(np.int16)
    for src in (a, np.asfortranarray(a), a[::-1, :, ::2], a.transpose(2, 0, 1)):
        out = reorder(src, order)
        assert out.flags[f"{order}_CONTIGUOUS"]
        np.testing.assert_array_equal(out, src)


def test_written_nifti_holds_the_bytes_nibabel_writes(tmp_path) -> None:
    labels = np.zeros((40, 30, 20), np.uint8, order="F")
    labels[10:20, 5:25, 3:9] = np.random.default_rng(1).integers(0, 6, (10, 20, 6))
    img = nib.Nifti1Image(labels, np.diag([0.8, -0.8, 2.0, 1.0]))
    nib.save(img, str(tmp_path / "plain.nii.gz"))
    write_nifti(tmp_path / "fast.nii.gz", img)
    assert gzip.decompress((tmp_path / "fast.nii.gz").read_bytes()) == gzip.decompress(
        (tmp_path / "plain.nii.gz").read_bytes()
    )


def test_fast_read_equals_nibabel_and_checks_the_header_first(tmp_path) -> None:
    ct = np.random.default_rng(2).integers(-1000, 1000, (30, 20, 10)).astype(np.int16)
    img = nib.Nifti1Image(ct, np.eye(4))
    img.header.set_slope_inter(2.0, -5.0)
    nib.save(img, str(tmp_path / "ct.nii.gz"))
    seen = []
    got, data = load_nifti(tmp_path / "ct.nii.gz", lambda i: seen.append(i.shape))
    np.testing.assert_array_equal(data, np.asanyarray(nib.load(str(tmp_path / "ct.nii.gz")).dataobj))
    assert seen == [(30, 20, 10)]

    def refuse(_):
        raise ValueError("too large")

    with pytest.raises(ValueError, match="too large"):
        load_nifti(tmp_path / "ct.nii.gz", refuse)


def test_isal_is_installed_with_the_client() -> None:
    assert igzip is not None, "isal (ISA-L gzip) is a client dependency: the fast .nii.gz path needs it"


@pytest.mark.parametrize("codes", ["".join(p) for p in itertools.permutations("RAS")] + ["LPS", "LAI", "PIR"])
def test_from_canonical_of_a_boxed_map_equals_the_whole_array_transform(codes) -> None:
    shape = (23, 19, 11)
    ornt = ornts.axcodes2ornt(tuple(codes))
    affine = ornts.inv_ornt_aff(ornt, shape)
    data = np.zeros(shape, np.int16)
    can = to_canonical(data, affine)
    labels = np.zeros(can.data.shape, np.uint8)
    labels[3:9, 2:9, 5:8] = np.random.default_rng(3).integers(0, 6, (6, 7, 3))
    expected = ornts.apply_orientation(
        labels, ornts.ornt_transform(ornts.axcodes2ornt(("R", "A", "S")), can.ornt)
    )
    back = from_canonical(labels, can)
    assert back.flags.f_contiguous
    np.testing.assert_array_equal(back, expected)
    np.testing.assert_array_equal(from_canonical(np.zeros_like(labels), can), 0)
