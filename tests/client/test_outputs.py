"""Per-case outputs land on exactly the input grid with predictable names; the report indexes the input grid."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from eanno_client.classes import CLASS_NAMES
from eanno_client.orientation import from_canonical, to_canonical
from eanno_client.outputs import CasePaths, OutputOptions, write_case
from eanno_client.readers import read_volume
from eanno_postproc import refine

from .conftest import make_phantom, save_nifti, write_dicom_series


@pytest.mark.parametrize("orientation", ["PLI", "LPS"])
def test_outputs_on_the_input_grid(tmp_path, orientation):
    p = make_phantom(orientation, n_lesions=2)
    src = save_nifti(tmp_path / "case.nii.gz", p.ct, p.affine)
    volume = read_volume(src)
    can = to_canonical(volume.data, volume.affine)
    truth_can = to_canonical(p.labels, p.affine).data
    res = refine(can.data, labels=truth_can, affine=can.affine)
    report = {**res.report, "model": {"name": "test", "version": "1"}}
    paths = CasePaths(tmp_path / "out" / "case")
    out = write_case(paths, "case", volume, can, res.labels, res.removed, report, OutputOptions())

    assert all(f.is_file() for f in paths.expected(OutputOptions(), is_dicom=False))
    assert not list(paths.root.rglob(".*part*")), "temporary files left behind"
    img = nib.load(str(paths.labels))
    assert img.shape == p.ct.shape and img.get_data_dtype() == np.uint8
    np.testing.assert_allclose(img.affine, p.affine, atol=1e-4)
    np.testing.assert_allclose(img.get_qform(), img.get_sform(), atol=1e-5)
    labels = np.asarray(img.dataobj)
    np.testing.assert_array_equal(labels, from_canonical(res.labels, can))
    assert np.array_equal(labels > 0, p.labels > 0)
    seg = {
        n: np.asarray(nib.load(str(paths.segmentation(n))).dataobj)
        for n in (*CLASS_NAMES[1:], "pancreatic_lesion")
    }
    np.testing.assert_array_equal(seg["pancreas"], labels > 0)
    np.testing.assert_array_equal(seg["pancreatic_lesion"], np.isin(labels, (3, 4, 5)))
    for cls in range(2, 6):
        np.testing.assert_array_equal(seg[CLASS_NAMES[cls]], labels == cls)

    saved = json.loads(paths.report.read_text())
    assert saved == json.loads(json.dumps(out))
    assert saved["grid"]["shape"] == list(p.ct.shape)
    kept = [x for x in saved["lesions"] if x["decision"] == "kept"]
    assert kept, "the phantom's lesions should be kept"
    for lesion in kept:
        cls = CLASS_NAMES.index(lesion["class"])
        # the remapped centroid is the centroid of that lesion's voxels on the input grid ...
        lo, hi = np.array(lesion["bbox_voxel"]["min"]), np.array(lesion["bbox_voxel"]["max"])
        box = tuple(slice(a, b + 1) for a, b in zip(lo, hi, strict=True))
        idx = np.argwhere(labels[box] == cls) + lo
        np.testing.assert_allclose(lesion["centroid_voxel"], idx.mean(axis=0), atol=1e-3)
        # ... and maps through the input affine to the world position the server reported
        world = p.affine[:3, :3] @ np.array(lesion["centroid_voxel"]) + p.affine[:3, 3]
        np.testing.assert_allclose(world, lesion["centroid_mm"], atol=1e-2)
    truth = sorted(tuple(x["centre_world"]) for x in p.lesions)
    found = sorted(tuple(x["centroid_mm"]) for x in kept)
    np.testing.assert_allclose(found, truth, atol=1.0)

    summary = paths.summary.read_text()
    assert f"{len(kept)} lesion(s) kept" in summary and "itksnap -g" in summary
    assert paths.preview.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths.commands.read_text().startswith("#!/bin/sh")


def test_dicom_seg_references_the_series(tmp_path):
    pytest.importorskip("highdicom")
    import pydicom

    p = make_phantom("LPS", shape=(48, 40, 12), n_lesions=1)
    write_dicom_series(tmp_path / "dcm", p.ct, p.affine)
    volume = read_volume(tmp_path / "dcm")
    can = to_canonical(volume.data, volume.affine)
    truth_can = to_canonical(p.labels, p.affine).data
    paths = CasePaths(tmp_path / "out")
    options = OutputOptions(preview=False, dicom_seg=True)
    write_case(paths, "dcm", volume, can, truth_can, np.zeros_like(truth_can), {"lesions": []}, options)
    seg = pydicom.dcmread(paths.dicom_seg)
    assert seg.Modality == "SEG" and len(seg.SegmentSequence) == 5
    refs = {
        r.ReferencedSOPInstanceUID for s in seg.ReferencedSeriesSequence for r in s.ReferencedInstanceSequence
    }
    assert refs == {ds.SOPInstanceUID for ds in volume.datasets}
    frames = seg.pixel_array  # (frames, rows, cols) per segment, slices in source order
    assert frames.shape[0] == 5 * p.ct.shape[2]
    import highdicom as hd

    s = hd.seg.Segmentation.from_dataset(seg)
    pancreas = s.get_pixels_by_source_instance(
        [ds.SOPInstanceUID for ds in volume.datasets], segment_numbers=[1]
    )[..., 0]
    np.testing.assert_array_equal(pancreas.transpose(2, 1, 0), p.labels == 1)
