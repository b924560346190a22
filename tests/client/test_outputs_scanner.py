"""Outputs as users of other tools expect them: nnU-Net naming and the flat layout, DICOM-SEG on series made
like a scanner's (compressed, private tags, identifiers stripped) and on pydicom's own CT file, the umask's
permissions, and no partial outputs when a case fails half-way."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from eanno_client.cases import case_name, expand_inputs
from eanno_client.orientation import to_canonical
from eanno_client.outputs import CasePaths, OutputOptions, write_case
from eanno_client.readers import read_volume
from eanno_client.volume import InputError

from .conftest import make_phantom, save_nifti, write_dicom_series

# Identifiers a de-identifying export removes (Type 2 tags highdicom copies into the SEG).
STRIPPED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyID",
)
SYNTAXES = {
    "rle": "1.2.840.10008.1.2.5",
    "jpeg-ls": "1.2.840.10008.1.2.4.80",
    "jpeg2000": "1.2.840.10008.1.2.4.90",
}


def scannerize(folder: Path, syntax: str | None) -> None:
    """Rewrite each file as a scanner's export: signed 12-bit pixels, vendor private tags, no identifiers,
    then compressed with `syntax`."""
    import pydicom

    for f in folder.iterdir():
        ds = pydicom.dcmread(f)
        hu = ds.pixel_array.astype(np.int32) + int(ds.RescaleIntercept)
        for tag in STRIPPED:
            if tag in ds:
                delattr(ds, tag)
        ds.PixelRepresentation, ds.BitsStored, ds.HighBit, ds.RescaleIntercept = 1, 12, 11, 0
        ds.PixelData = hu.astype(np.int16).tobytes()
        ds.Manufacturer = "GE MEDICAL SYSTEMS"
        block = ds.private_block(0x0009, "GEMS_IDEN_01", create=True)
        block.add_new(0x01, "LO", "CT_LIGHTSPEED")
        if syntax is not None:
            ds.compress(syntax)
        ds.save_as(f, enforce_file_format=True)


def seg_case(tmp_path: Path, folder: Path, layout: str = "case"):
    """Read the series, write its own phantom labels through write_case with --dicom-seg."""
    volume = read_volume(folder)
    can = to_canonical(volume.data, volume.affine)
    labels = np.zeros(can.data.shape, np.uint8)
    labels[can.data > 0] = 1  # soft tissue -> pancreas: a mask that follows the image
    paths = CasePaths.for_case(tmp_path / "out", "case", layout)
    write_case(
        paths,
        "case",
        volume,
        can,
        labels,
        np.zeros_like(labels),
        {"lesions": []},
        OutputOptions(preview=False, dicom_seg=True, layout=layout),
    )
    return volume, can, labels, paths


def check_seg(path: Path, volume, labels_input: np.ndarray) -> None:
    """Readable by pydicom and highdicom, referencing every source instance, one segment per class, right pixels."""
    import highdicom as hd
    import pydicom

    seg = pydicom.dcmread(path)
    assert seg.Modality == "SEG" and len(seg.SegmentSequence) == 5
    assert [s.SegmentLabel for s in seg.SegmentSequence] == [
        "pancreas",
        "pancreatic_duct",
        "pancreatic_pdac",
        "pancreatic_cyst",
        "pancreatic_pnet",
    ]
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == volume.series_uid
    refs = {r.ReferencedSOPInstanceUID for r in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert refs == {ds.SOPInstanceUID for ds in volume.datasets}
    assert "PatientName" in seg and str(seg.PatientName) == ""  # present (Type 2), empty as in the source
    s = hd.seg.segread(path)
    pancreas = s.get_pixels_by_source_instance(
        [ds.SOPInstanceUID for ds in volume.datasets], segment_numbers=[1]
    )[..., 0]
    np.testing.assert_array_equal(pancreas.transpose(2, 1, 0), labels_input == 1)


@pytest.mark.parametrize("syntax", [None, *SYNTAXES])
def test_dicom_seg_on_a_scanner_like_series(tmp_path, syntax):
    pytest.importorskip("highdicom")
    p = make_phantom("LPS", shape=(64, 64, 6), n_lesions=1)  # JPEG 2000 needs rows/columns of some size
    write_dicom_series(tmp_path / "dcm", p.ct, p.affine)
    scannerize(tmp_path / "dcm", SYNTAXES.get(syntax))
    volume, can, labels, paths = seg_case(tmp_path, tmp_path / "dcm")
    from eanno_client.orientation import from_canonical

    check_seg(paths.dicom_seg, volume, from_canonical(labels, can))


def test_dicom_seg_on_pydicoms_own_ct_file_made_into_a_series(tmp_path):
    """pydicom's CT_small.dcm (a real GE scanner file: private tags, signed pixels) as four slices, RLE."""
    pytest.importorskip("highdicom")
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import RLELossless, generate_uid

    src = get_testdata_file("CT_small.dcm")
    folder = tmp_path / "ct_small"
    folder.mkdir()
    series = generate_uid()
    for k in range(4):
        ds = pydicom.dcmread(src)
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = k + 1
        pos = [float(v) for v in ds.ImagePositionPatient]
        ds.ImagePositionPatient = [pos[0], pos[1], pos[2] + k * float(ds.SliceThickness)]
        for tag in STRIPPED:
            if tag in ds:
                delattr(ds, tag)
        ds.compress(RLELossless)
        ds.save_as(folder / f"{k}.dcm", enforce_file_format=True)
    volume, can, labels, paths = seg_case(tmp_path, folder)
    from eanno_client.orientation import from_canonical

    check_seg(paths.dicom_seg, volume, from_canonical(labels, can))


def test_a_case_failing_half_way_leaves_nothing(tmp_path):
    """DICOM-SEG fails after the label maps are written (a slice lost between reading and writing): nothing
    of the case may be left, and the reason is a sentence, not ''."""
    pytest.importorskip("highdicom")
    p = make_phantom("LPS", shape=(48, 40, 6))
    write_dicom_series(tmp_path / "dcm", p.ct, p.affine)
    volume = read_volume(tmp_path / "dcm")
    volume.datasets = volume.datasets[:-1]
    can = to_canonical(volume.data, volume.affine)
    labels = np.zeros(can.data.shape, np.uint8)
    out = tmp_path / "out"
    for layout in ("case", "flat"):
        with pytest.raises(InputError, match="DICOM-SEG needs the DICOM series"):
            write_case(
                CasePaths.for_case(out, "dcm", layout),
                "dcm",
                volume,
                can,
                labels,
                labels,
                {"lesions": []},
                OutputOptions(preview=True, dicom_seg=True, layout=layout),
            )
        assert list(out.iterdir()) == [], f"{layout}: partial outputs left: {list(out.rglob('*'))}"


def test_outputs_get_the_umask_permissions(tmp_path):
    p = make_phantom("RAS", shape=(24, 20, 8))
    path = save_nifti(tmp_path / "ct.nii.gz", p.ct, p.affine)
    volume = read_volume(path)
    can = to_canonical(volume.data, volume.affine)
    labels = to_canonical(p.labels, p.affine).data
    old = os.umask(0o027)
    try:
        paths = CasePaths.for_case(tmp_path / "out", "ct")
        write_case(paths, "ct", volume, can, labels, np.zeros_like(labels), {"lesions": []}, OutputOptions())
    finally:
        os.umask(old)
    files = [f for f in paths.root.rglob("*") if f.is_file()]
    assert len(files) >= 12
    modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
    assert set(modes.values()) == {0o640}, modes  # 0666 less the umask, not mkstemp's 0600
    assert stat.S_IMODE(paths.segmentations.stat().st_mode) == 0o750


def test_flat_layout_writes_labels_and_report_only(tmp_path):
    p = make_phantom("LPS", shape=(24, 20, 8))
    path = save_nifti(tmp_path / "pancreas_001_0000.nii.gz", p.ct, p.affine)
    [case] = expand_inputs([path])
    assert case.name == "pancreas_001"
    volume = read_volume(path)
    can = to_canonical(volume.data, volume.affine)
    labels = to_canonical(p.labels, p.affine).data
    out = tmp_path / "out"
    paths = CasePaths.for_case(out, case.name, "flat")
    write_case(
        paths,
        case.name,
        volume,
        can,
        labels,
        np.zeros_like(labels),
        {"lesions": []},
        OutputOptions(preview=False, layout="flat"),
    )
    assert sorted(f.name for f in out.iterdir()) == ["pancreas_001.json", "pancreas_001.nii.gz"]
    img = nib.load(str(out / "pancreas_001.nii.gz"))
    np.testing.assert_array_equal(np.asanyarray(img.dataobj), p.labels)
    np.testing.assert_allclose(img.affine, p.affine)
    assert paths.expected(OutputOptions(preview=False, layout="flat"), is_dicom=False) == [
        paths.labels,
        paths.report,
    ]


def test_nnunet_channel_names(tmp_path):
    assert case_name(tmp_path / "pancreas_001_0000.nii.gz") == "pancreas_001"
    assert case_name(tmp_path / "scan_2024.nii.gz") == "scan_2024"  # a year, not a channel
    assert case_name(tmp_path / "liver_0000.mha") == "liver"
    with pytest.raises(InputError, match="nnU-Net channel 0001.*pancreas_001_0000"):
        case_name(tmp_path / "pancreas_001_0001.nii.gz")
    # nnU-Net's imagesTs folder: CASE_0000 files become cases named CASE
    folder = tmp_path / "imagesTs"
    folder.mkdir()
    p = make_phantom("RAS", shape=(16, 16, 6))
    for name in ("a_0000", "b_0000"):
        save_nifti(folder / f"{name}.nii.gz", p.ct, p.affine)
    assert [c.name for c in expand_inputs([folder])] == ["a", "b"]
