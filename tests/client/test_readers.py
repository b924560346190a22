"""Readers: every format gives the same HU voxels at the same world positions."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from eanno_client.orientation import to_canonical
from eanno_client.readers import read_volume
from eanno_client.volume import InputError

from .conftest import make_phantom, save_itk, save_nifti, write_dicom_series


def canonical_of(volume):
    c = to_canonical(volume.data, volume.affine)
    return c.data, c.affine


@pytest.fixture(scope="module")
def reference():
    """The phantom stored in RAS: the canonical truth every reader must reproduce."""
    p = make_phantom("RAS")
    return p.ct, p.affine


@pytest.mark.parametrize("orientation", ["RAS", "LPS", "PLI", "SRA", "ILP"])
def test_nifti_any_orientation_reads_to_the_same_canonical_volume(tmp_path, reference, orientation):
    p = make_phantom(orientation)
    path = save_nifti(tmp_path / "ct.nii.gz", p.ct, p.affine)
    vol = read_volume(path)
    assert vol.data.dtype == np.int16 and vol.kind == "nifti"
    np.testing.assert_array_equal(vol.data, p.ct)
    np.testing.assert_allclose(vol.affine, p.affine, atol=1e-4)
    assert "".join(nib.aff2axcodes(vol.affine)) == orientation
    data, affine = canonical_of(vol)
    np.testing.assert_array_equal(data, reference[0])
    np.testing.assert_allclose(affine, reference[1], atol=1e-4)


def test_nifti_scaled_float_data_becomes_rounded_hu(tmp_path):
    p = make_phantom("RAS")
    img = nib.Nifti1Image(p.ct.astype(np.float32) + 0.4, p.affine)
    nib.save(img, str(tmp_path / "f.nii"))
    np.testing.assert_array_equal(read_volume(tmp_path / "f.nii").data, p.ct)


@pytest.mark.parametrize("suffix", [".mha", ".nrrd"])
@pytest.mark.parametrize("orientation", ["LPS", "RAI"])
def test_mha_nrrd_geometry_matches_nifti(tmp_path, reference, suffix, orientation):
    p = make_phantom(orientation)
    vol = read_volume(save_itk(tmp_path / f"ct{suffix}", p.ct, p.affine))
    assert vol.kind == "itk"
    np.testing.assert_array_equal(vol.data, p.ct)
    np.testing.assert_allclose(vol.affine, p.affine, atol=1e-5)
    data, affine = canonical_of(vol)
    np.testing.assert_array_equal(data, reference[0])
    np.testing.assert_allclose(affine, reference[1], atol=1e-5)


@pytest.mark.parametrize("orientation", ["LPS", "RAS", "LPI"])
def test_dicom_series_geometry_and_rescale(tmp_path, reference, orientation):
    p = make_phantom(orientation)
    write_dicom_series(tmp_path / "s", p.ct, p.affine, slope=0.5, intercept=-1100.0)
    vol = read_volume(tmp_path / "s")
    assert vol.kind == "dicom" and len(vol.datasets) == p.ct.shape[2]
    data, affine = canonical_of(vol)
    np.testing.assert_array_equal(data, reference[0])
    np.testing.assert_allclose(affine, reference[1], atol=1e-4)


@pytest.mark.parametrize("syntax", ["RLELossless", "JPEGLSLossless", "JPEG2000Lossless"])
def test_dicom_compressed_transfer_syntaxes(tmp_path, reference, syntax):
    import pydicom.uid

    p = make_phantom("LPS", shape=(64, 64, 6))
    write_dicom_series(tmp_path / "s", p.ct, p.affine, transfer_syntax=getattr(pydicom.uid, syntax))
    vol = read_volume(tmp_path / "s")
    assert str(vol.datasets[0].file_meta.TransferSyntaxUID) == str(getattr(pydicom.uid, syntax))
    np.testing.assert_array_equal(vol.data, p.ct)


def test_dicom_folder_with_several_series_picks_the_largest_ct_and_says_so(tmp_path):
    big, small = make_phantom("LPS", shape=(24, 20, 10)), make_phantom("LPS", shape=(24, 20, 6))
    uid_big = write_dicom_series(tmp_path, big.ct, big.affine, description="big")
    uid_small = write_dicom_series(tmp_path, small.ct, small.affine, description="small", seed=1)
    mr = make_phantom("LPS", shape=(24, 20, 14))
    write_dicom_series(tmp_path, mr.ct, mr.affine, modality="MR", description="mr", seed=2)
    vol = read_volume(tmp_path)
    assert vol.series_uid == uid_big and vol.data.shape == (24, 20, 10)
    assert uid_big in vol.note and "most slices of 3" in vol.note
    chosen = read_volume(tmp_path, series_uid=uid_small)
    assert chosen.data.shape == (24, 20, 6) and "--series-uid" in chosen.note
    with pytest.raises(InputError, match="series 1.2.3 not found"):
        read_volume(tmp_path, series_uid="1.2.3")


def test_dicom_missing_slice_is_a_clear_error(tmp_path):
    p = make_phantom("LPS", shape=(16, 16, 8))
    write_dicom_series(tmp_path, p.ct, p.affine)
    files = sorted(
        tmp_path.iterdir(),
        key=lambda f: float(
            __import__("pydicom").dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]
        ),
    )
    files[3].unlink()
    with pytest.raises(InputError, match="not evenly spaced"):
        read_volume(tmp_path)


def test_bad_inputs_name_the_file(tmp_path):
    (tmp_path / "x.nii.gz").write_bytes(b"not a nifti")
    with pytest.raises(InputError, match=r"x\.nii\.gz: not a readable NIfTI"):
        read_volume(tmp_path / "x.nii.gz")
    with pytest.raises(InputError, match="no such file"):
        read_volume(tmp_path / "missing.nii.gz")
    (tmp_path / "notes.doc").write_text("x")
    with pytest.raises(InputError, match=r"notes\.doc: not a NIfTI"):
        read_volume(tmp_path / "notes.doc")


def test_real_ct_reads_and_round_trips(real_ct_dir, tmp_path):
    from eanno_client.orientation import from_canonical
    from eanno_client.outputs import save_nifti as save_labels

    src = real_ct_dir / "example_ct_sm.nii.gz"
    vol = read_volume(src)
    img = nib.load(str(src))
    assert vol.data.shape == img.shape and vol.data.dtype == np.int16
    np.testing.assert_array_equal(vol.data, np.rint(img.get_fdata()).astype(np.int16))
    can = to_canonical(vol.data, vol.affine)
    assert nib.aff2axcodes(can.affine) == ("R", "A", "S")
    seg = np.asarray(nib.load(str(real_ct_dir / "example_ct_sm_seg_total.nii.gz")).dataobj).astype(np.uint8)
    seg_can = to_canonical(seg, vol.affine).data
    out = save_labels(tmp_path / "labels.nii.gz", from_canonical(seg_can, can), vol.affine)
    back = nib.load(str(out))
    np.testing.assert_array_equal(np.asarray(back.dataobj), seg)
    np.testing.assert_allclose(back.affine, img.affine, atol=1e-4)
