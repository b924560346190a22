"""MSD Task07 and PANORAMA label maps -> the 6-class map, on synthetic label maps written in those formats."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from eanno_training.converters import ConvertError, convert_dataset, find_pairs, table_for
from eanno_training.converters.cli import main as convert_cli
from eanno_training.converters.writers import write_msd_case, write_panorama_case
from eanno_training.evaluation.cases import read_atlas_case
from eanno_training.phantoms import generate_phantom
from eanno_training.phantoms.writer import nifti


def write_msd(ph_labels: np.ndarray, ct: np.ndarray, affine: np.ndarray, root: Path, name: str) -> None:
    """MSD Task07: 1 pancreas (organ incl. duct), 2 cancer (any lesion)."""
    write_msd_case(root, name, ct, ph_labels, affine)
    (root / "dataset.json").write_text(
        json.dumps({"labels": {"0": "background", "1": "pancreas", "2": "cancer"}})
    )


def write_panorama(
    ph_labels: np.ndarray, ct: np.ndarray, affine: np.ndarray, root: Path, name: str
) -> np.ndarray:
    """PANORAMA with vessels and the CBD painted outside the pancreas; an automatic label that manual overrides."""
    vessels = np.zeros(ph_labels.shape, np.uint8)
    free = np.argwhere(ph_labels == 0)
    for value, k in ((2, 0), (3, len(free) // 2), (6, len(free) - 1)):
        i, j, kk = free[k]
        vessels[i : i + 2, j : j + 2, kk : kk + 2] = value
    write_panorama_case(root, name, ct, np.zeros_like(ph_labels), affine, manual=False)
    path = write_panorama_case(root, name, ct, ph_labels, affine, vessels=vessels)
    return np.asarray(nib.load(path).dataobj)


@pytest.fixture(scope="module")
def phantom():
    return generate_phantom(4, spacing=(2.0, 2.0, 3.0), n_lesions=3, orientation="LPS")


def test_msd_to_six_classes(tmp_path: Path, phantom) -> None:
    write_msd(phantom.labels, phantom.ct, phantom.affine, tmp_path / "Task07_Pancreas", "pancreas_001")
    (tmp_path / "Task07_Pancreas" / "labelsTr" / "._pancreas_001.nii.gz").write_bytes(
        b"\0"
    )  # macOS junk in the tarball
    written = convert_dataset(
        tmp_path / "Task07_Pancreas", "msd", tmp_path / "out", table_for("msd", tumour_class="cyst")
    )
    assert [p.name for p in written] == ["pancreas_001"]
    img = nib.load(written[0] / "combined_labels.nii.gz")
    got = np.asarray(img.dataobj)
    expected = np.where(
        phantom.labels >= 3, 4, np.where(phantom.labels > 0, 1, 0)
    )  # duct folds into pancreas
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_allclose(img.affine, phantom.affine)  # the input grid, not canonical
    assert int(img.header["qform_code"]) == 1 and int(img.header["sform_code"]) == 1
    np.testing.assert_array_equal(np.asarray(nib.load(written[0] / "ct.nii.gz").dataobj), phantom.ct)
    organ = np.asarray(nib.load(written[0] / "segmentations" / "pancreas.nii.gz").dataobj)
    np.testing.assert_array_equal(organ > 0, phantom.labels > 0)
    case = read_atlas_case(written[0])  # the evaluation reader takes it (canonical order)
    assert sorted(np.unique(case.truth)) == sorted(np.unique(expected))


def test_panorama_to_six_classes(tmp_path: Path, phantom) -> None:
    lab = write_panorama(phantom.labels, phantom.ct, phantom.affine, tmp_path / "panorama", "100001_00001")
    assert {2, 3, 6} <= set(np.unique(lab))
    pairs = find_pairs(tmp_path / "panorama", "panorama")
    assert [(n, lp.parent.name) for n, _, lp in pairs] == [("100001_00001", "manual_labels")]  # manual wins
    r = CliRunner().invoke(
        convert_cli, ["panorama", str(tmp_path / "panorama"), "--out", str(tmp_path / "out"), "--json"]
    )
    assert r.exit_code == 0, r.output
    folder = Path(json.loads(r.output)["cases"][0])
    got = np.asarray(nib.load(folder / "combined_labels.nii.gz").dataobj)
    expected = np.where(phantom.labels >= 3, 3, phantom.labels)  # PANORAMA knows PDAC only; vessels, CBD -> 0
    np.testing.assert_array_equal(got, expected)


def test_errors_name_the_file(tmp_path: Path, phantom) -> None:
    root = tmp_path / "msd"
    write_msd(phantom.labels, phantom.ct, phantom.affine, root, "pancreas_002")
    nib.save(nifti(phantom.labels[:-1], phantom.affine), root / "labelsTr" / "pancreas_002.nii.gz")
    with pytest.raises(ConvertError, match=r"pancreas_002\.nii\.gz: not on the grid"):
        convert_dataset(root, "msd", tmp_path / "out", table_for("msd"))
    r = CliRunner().invoke(convert_cli, ["msd", str(tmp_path), "--out", str(tmp_path / "o2")])
    assert r.exit_code == 1 and "imagesTr/ and labelsTr/" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(
        convert_cli, ["msd", str(root), "--out", str(tmp_path / "o3"), "--tumour-class", "lymphoma"]
    )
    assert r.exit_code == 2
