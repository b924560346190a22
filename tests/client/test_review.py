"""`eanno-client review` on a hand-built case where every lesion's fate and every count is known."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from eanno_client.cli import main
from eanno_client.review import compare

AFFINE = np.diag([1.0, 1.0, 2.0, 1.0])  # 2 mm^3 voxels = 0.002 mL
ML = 0.002


def build_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model labels, revised labels and the removed-candidates map of one case (see each lesion's note)."""
    model = np.zeros((40, 40, 20), np.uint8)
    model[2:38, 2:38, 2:18] = 1
    revised = model.copy()
    removed = np.zeros_like(model)
    model[5:9, 5:9, 5:9] = revised[5:9, 5:9, 5:9] = 3  # A: unchanged PDAC, 64 voxels
    model[15:18, 5:8, 5:8] = 4  # B: cyst the radiologist deleted (false positive kept), 27 voxels
    revised[25:28, 5:8, 5:8] = 5  # C: PNET the model missed, 27 voxels
    revised[5:8, 25:28, 5:8] = 4  # D: cyst post-processing removed and the radiologist restored
    removed[5:8, 25:28, 5:8] = 4
    model[15:19, 15:19, 5:9] = 3  # E: PDAC grown from 64 to 96 voxels (resized, same surface within 2 mm)
    revised[15:21, 15:19, 5:9] = 3
    model[28:32, 28:32, 5:9] = 3  # F: PDAC that is a cyst (reclassified), 64 voxels
    revised[28:32, 28:32, 5:9] = 4
    removed[32:35, 5:8, 12:15] = 3  # G: a removed candidate left out by the radiologist too
    return model, revised, removed


def test_every_lesion_fate_and_count() -> None:
    model, revised, removed = build_case()
    r = compare(model, revised, AFFINE, removed)
    assert r["lesion_counts"] == {
        "matched": 3,
        "added": 2,
        "deleted": 1,
        "unchanged": 1,
        "resized": 1,
        "reshaped": 0,
        "reclassified": 1,
        "split": 0,
        "merged": 0,
    }
    assert r["errors"] == {
        "missed": 1,
        "restored": 1,
        "false_positive_kept": 1,
        "reclassified": 1,
        "boundary": 1,
        "removed_confirmed": 1,
    }
    by_kind = {(x["kind"], x["error"]): x for x in r["lesions"]}
    grown = by_kind[("matched", "boundary")]
    assert grown["model_voxels"] == 64 and grown["revised_voxels"] == 96
    assert grown["volume_change_ml"] == pytest.approx(32 * ML)
    assert grown["volume_change_fraction"] == pytest.approx(0.5)
    assert grown["surface_dice"] == pytest.approx(1.0)
    assert grown["dice"] == pytest.approx(2 * 64 / 160)
    assert by_kind[("added", "restored")]["restored_from_class"] == "pancreatic_cyst"
    assert by_kind[("added", "missed")]["revised_class"] == "pancreatic_pnet"
    assert by_kind[("added", "missed")]["centroid_voxel"] == [
        26.0,
        6.0,
        6.0,
    ]  # on the whole grid, not the crop
    assert by_kind[("deleted", "false_positive_kept")]["model_ml"] == pytest.approx(27 * ML)
    assert by_kind[("matched", "reclassified")]["revised_class"] == "pancreatic_cyst"


def test_class_figures_and_edit_effort() -> None:
    model, revised, removed = build_case()
    r = compare(model, revised, AFFINE, removed)
    pdac = r["classes"]["pancreatic_pdac"]
    assert (pdac["model_voxels"], pdac["revised_voxels"]) == (192, 160)
    assert (pdac["added_voxels"], pdac["deleted_voxels"]) == (32, 64)
    assert pdac["volume_change_ml"] == pytest.approx(-32 * ML)
    effort = r["effort"]
    assert effort["voxels_changed"] == 27 + 27 + 27 + 32 + 64
    assert effort["ml_changed"] == pytest.approx(177 * ML)
    # axis 0: B 3 + C 3 + D 3 + E 2 + F 4 slices; axis 1: {5-7} {25-27} {15-18} {28-31}; axis 2: {5-8}
    assert effort["slices_touched"] == [15, 14, 4]
    assert effort["slices_touched_by_plane"] == {"sagittal": 15, "coronal": 14, "axial": 4}
    assert r["spacing_mm"] == [1.0, 1.0, 2.0]


def test_without_the_removed_map_a_restored_lesion_counts_as_missed() -> None:
    model, revised, _ = build_case()
    r = compare(model, revised, AFFINE, None)
    assert (r["errors"]["missed"], r["errors"]["restored"], r["errors"]["removed_confirmed"]) == (2, 0, 0)


def test_reshaped_when_the_surface_moves_beyond_the_tolerance() -> None:
    model = np.zeros((30, 30, 30), np.uint8)
    revised = model.copy()
    model[5:15, 5:15, 5:15] = 3
    revised[8:18, 5:15, 5:15] = 3  # same volume, moved 3 mm: reshaped, not resized
    r = compare(model, revised, np.eye(4))
    (lesion,) = r["lesions"]
    assert lesion["changes"] == ["reshaped"]
    assert lesion["surface_dice"] < 0.9


def save(path: Path, data: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


@pytest.fixture
def annotated(tmp_path: Path) -> Path:
    """An annotate output folder: case1 revised as in build_case, case2 approved as it was."""
    model, revised, removed = build_case()
    out = tmp_path / "out"
    save(out / "case1" / "labels.nii.gz", model)
    save(out / "case1" / "removed.nii.gz", removed)
    save(out / "case1" / "revised.nii.gz", revised)
    save(out / "case2" / "labels.nii.gz", model)
    save(out / "case2" / "revised.nii.gz", model)
    save(out / "case3" / "labels.nii.gz", model)  # not revised yet: left out
    return out


def test_cli_folder_json(annotated: Path) -> None:
    res = CliRunner().invoke(main, ["review", str(annotated), str(annotated), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert [c["case"] for c in data["cases"]] == ["case1", "case2"]
    s = data["summary"]
    assert (s["cases"], s["cases_unchanged"]) == (2, 1)
    assert s["errors"]["restored"] == 1 and s["voxels_changed"] == 177
    assert data["cases"][0]["removed"].endswith("case1/removed.nii.gz")


def test_cli_files_table(annotated: Path) -> None:
    res = CliRunner().invoke(
        main,
        ["review", str(annotated / "case1" / "labels.nii.gz"), str(annotated / "case1" / "revised.nii.gz")],
    )
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("case1"))
    # lesions added deleted resized reshaped missed restored FP-kept voxels slices
    assert line.split()[1:] == ["6", "2", "1", "1", "0", "1", "1", "1", "177", "33"]
    assert "1 wrongly removed by post-processing (restored)" in res.output


def test_cli_tolerance_changes_reshaped(annotated: Path) -> None:
    args = [
        "review",
        str(annotated / "case1" / "labels.nii.gz"),
        str(annotated / "case1" / "revised.nii.gz"),
        "--json",
    ]
    strict = json.loads(CliRunner().invoke(main, [*args, "--tolerance", "0.5"]).output)
    # E's trailing face moved 2 mm: at 0.5 mm it is reshaped too
    assert strict["summary"]["lesion_counts"]["reshaped"] == 1


def test_cli_grid_mismatch_names_the_file(tmp_path: Path) -> None:
    model, revised, _ = build_case()
    a = save(tmp_path / "a.nii.gz", model)
    b = save(tmp_path / "b.nii.gz", revised, np.diag([1.0, 1.0, 3.0, 1.0]))
    res = CliRunner().invoke(main, ["review", str(a), str(b)])
    assert res.exit_code == 1
    assert f"{b}: affine differs" in res.output


def test_cli_bad_label_values(tmp_path: Path) -> None:
    model, revised, _ = build_case()
    revised[0, 0, 0] = 9
    a, b = save(tmp_path / "a.nii.gz", model), save(tmp_path / "b.nii.gz", revised)
    res = CliRunner().invoke(main, ["review", str(a), str(b)])
    assert res.exit_code == 1
    assert "labels must be integers 0-5, found [9.0]" in res.output


def test_cli_folders_without_revisions(tmp_path: Path) -> None:
    model, _, _ = build_case()
    save(tmp_path / "out" / "c" / "labels.nii.gz", model)
    (tmp_path / "rev").mkdir()
    res = CliRunner().invoke(main, ["review", str(tmp_path / "out"), str(tmp_path / "rev")])
    assert res.exit_code == 1 and "no revised labels for any case" in res.output
