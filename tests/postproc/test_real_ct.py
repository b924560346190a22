"""The rules on a real CT: its TotalSegmentator pancreas (label 7) and candidates placed in real tissue."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from eanno_postproc import refine
from eanno_postproc.cli import main
from scipy import ndimage

PDAC, CYST, PNET = 3, 4, 5


@pytest.fixture(scope="module")
def scene(real_ct_dir):
    """(CT image, label map with pancreas and three placed candidates, the candidates' masks)."""
    ct_img = nib.load(real_ct_dir / "example_ct_sm.nii.gz")
    seg = np.asanyarray(nib.load(real_ct_dir / "example_ct_sm_seg_total.nii.gz").dataobj)
    ct = np.asanyarray(ct_img.dataobj)
    pancreas = seg == 7
    cube = np.ones((3, 3, 3), dtype=bool)
    labels = pancreas.astype(np.uint8)

    inner = np.argwhere(ndimage.binary_erosion(pancreas, cube))[0]  # deep in the parenchyma
    box = tuple(slice(c - 1, c + 2) for c in inner)
    inside = np.zeros_like(pancreas)
    inside[box] = pancreas[box]
    labels[inside] = PDAC

    shell = ndimage.binary_dilation(pancreas, cube) & ~pancreas
    fat_voxels = shell & (ct >= -150) & (ct <= -60)  # fat touching the pancreas
    seed = np.argwhere(fat_voxels)[len(np.argwhere(fat_voxels)) // 2]
    box = tuple(slice(c - 1, c + 2) for c in seed)
    fat = np.zeros_like(pancreas)
    fat[box] = fat_voxels[box]  # voxels of one 3x3x3 cube: 26-connected through its centre
    labels[fat] = CYST

    distance = ndimage.distance_transform_edt(~pancreas)
    far_seed = np.argwhere((distance > 15) & (ct > 0) & (ct < 100))[0]
    far = np.zeros_like(pancreas)
    far[tuple(slice(c, c + 2) for c in far_seed)] = True
    labels[far] = PNET
    return ct_img, labels, {"inside": inside, "fat": fat, "far": far}


def test_fat_candidate_relabelled_by_contrast_and_far_one_removed(scene) -> None:
    ct_img, labels, masks = scene
    ct = np.asanyarray(ct_img.dataobj)
    res = refine(ct, labels, affine=ct_img.affine)
    by_class = {x["class_id"]: x for x in res.report["lesions"]}
    assert set(by_class) == {PDAC, CYST, PNET}

    assert by_class[PDAC]["decision"] == "kept"
    assert np.all(res.labels[masks["inside"]] == PDAC)

    fat = by_class[CYST]
    assert fat["decision"] == "relabelled_contrast"
    assert fat["touches_pancreas"] is True
    assert fat["hu_mean"] < -33  # real fat, below the cyst window
    assert fat["hu_mean"] == pytest.approx(float(ct[masks["fat"]].mean()))
    assert np.all(res.labels[masks["fat"]] == 1) and np.all(res.removed[masks["fat"]] == CYST)

    far = by_class[PNET]
    assert far["decision"] == "removed_outside_pancreas"
    assert np.all(res.labels[masks["far"]] == 0) and np.all(res.removed[masks["far"]] == PNET)
    # 3 mm voxels: 8 voxels are 0.216 mL, and the centroid sits where the affine puts it
    assert far["volume_ml"] == pytest.approx(8 * 0.027)
    assert far["centroid_mm"] == pytest.approx((ct_img.affine @ [*far["centroid_voxel"], 1])[:3])


def test_command_on_the_real_ct_keeps_the_grid(scene, tmp_path, real_ct_dir) -> None:
    ct_img, labels, _ = scene
    pred = nib.Nifti1Image(labels, ct_img.affine, ct_img.header)
    pred.set_data_dtype(np.uint8)
    nib.save(pred, tmp_path / "pred.nii.gz")
    out, report = tmp_path / "refined.nii.gz", tmp_path / "report.json"
    result = CliRunner().invoke(
        main,
        ["refine", "--ct", str(real_ct_dir / "example_ct_sm.nii.gz"), "--pred", str(tmp_path / "pred.nii.gz"),
         "--out", str(out), "--report", str(report)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    refined = nib.load(out)
    assert refined.shape == ct_img.shape
    assert np.array_equal(refined.affine, ct_img.affine)
    assert refined.get_data_dtype() == np.uint8
    assert np.allclose(refined.get_qform(), refined.get_sform(), atol=1e-4)
    expected = refine(np.asanyarray(ct_img.dataobj), labels, affine=ct_img.affine)
    assert np.array_equal(np.asanyarray(refined.dataobj), expected.labels)
    assert json.loads(report.read_text())["summary"] == expected.report["summary"]
