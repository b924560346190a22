"""`eanno-postproc`: NIfTI round trips on the input grid, exit codes, nothing written on error."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from eanno_postproc import Rules, refine
from eanno_postproc.cli import main
from eanno_postproc.synthetic import make_case


@pytest.fixture(scope="module")
def case():
    return make_case(seed=4, n_candidates=9, shape=(64, 56, 40), probs_dtype=np.float32, speckles=30)


@pytest.fixture
def files(tmp_path, case, oblique, write_nifti):
    """CT and prediction NIfTI files on an oblique grid, and the output folder."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    return {
        "ct": write_nifti(inputs / "ct.nii.gz", case.ct, oblique),
        "pred": write_nifti(inputs / "pred.nii.gz", case.labels, oblique),
        "out": out,
        "affine": oblique,
    }


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def refine_args(files, *extra: str) -> list[str]:
    o = files["out"]
    return ["refine", "--ct", str(files["ct"]), "--pred", str(files["pred"]), "--out", str(o / "refined.nii.gz"),
            "--report", str(o / "report.json"), "--removed", str(o / "removed.nii.gz"), *extra]  # fmt: skip


def test_round_trip_on_the_input_grid(files, case) -> None:
    result = run(*refine_args(files))
    assert result.exit_code == 0, result.output
    expected = refine(case.ct, case.labels, affine=files["affine"])
    ct_img = nib.load(files["ct"])
    for name, data in (("refined.nii.gz", expected.labels), ("removed.nii.gz", expected.removed)):
        img = nib.load(files["out"] / name)
        assert img.shape == ct_img.shape
        assert np.array_equal(img.affine, ct_img.affine)
        assert np.allclose(img.get_qform(), img.get_sform(), atol=1e-5)
        assert img.header["qform_code"] == img.header["sform_code"] == 1
        assert img.get_data_dtype() == np.uint8
        assert nib.aff2axcodes(img.affine) == nib.aff2axcodes(ct_img.affine)
        assert np.array_equal(np.asanyarray(img.dataobj), data)
    report = json.loads((files["out"] / "report.json").read_text())
    assert report["summary"] == expected.report["summary"]
    assert report["files"]["pred"] == str(files["pred"])
    assert "candidates" in result.output and "kept" in result.output
    assert sorted(p.name for p in files["out"].iterdir()) == [
        "refined.nii.gz",
        "removed.nii.gz",
        "report.json",
    ]


def test_json_flag_prints_the_report(files) -> None:
    result = run(*refine_args(files, "--json"))
    assert result.exit_code == 0
    printed = json.loads(result.output)
    assert printed == json.loads((files["out"] / "report.json").read_text())


def test_probabilities_in_either_axis_order(files, case, tmp_path) -> None:
    np.savez_compressed(tmp_path / "probs.npz", probs=case.probs)
    np.savez_compressed(tmp_path / "nnunet.npz", probabilities=case.probs.transpose(0, 3, 2, 1))
    expected = refine(case.ct, probs=case.probs, affine=files["affine"], theta=0.01)
    for path, order in (("probs.npz", "ijk"), ("nnunet.npz", "kji")):
        result = run(
            *refine_args(files, "--probs", str(tmp_path / path), "--probs-order", order, "--theta", "0.01")
        )
        assert result.exit_code == 0, result.output
        got = np.asanyarray(nib.load(files["out"] / "refined.nii.gz").dataobj)
        assert np.array_equal(got, expected.labels)
        assert json.loads((files["out"] / "report.json").read_text())["theta"] == 0.01
    result = run(*refine_args(files, "--probs", str(tmp_path / "nnunet.npz")))
    assert result.exit_code == 1
    assert "pass --probs-order kji" in result.output


def test_rules_and_connectivity_options(files, case, tmp_path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("volume_ratio_limit:\n  pnet: 1000\n")
    result = run(*refine_args(files, "--rules", str(rules), "--connectivity", "6", "--json"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["rules"]["volume_ratio_limit"]["pnet"] == 1000 and report["connectivity"] == 6
    expected = refine(
        case.ct, case.labels, rules=Rules.from_dict({"volume_ratio_limit": {"pnet": 1000}}), connectivity=6
    )
    assert report["summary"] == expected.report["summary"]


def assert_nothing_written(files) -> None:
    assert list(files["out"].iterdir()) == [], "an error must leave the output folder untouched"


def test_grid_mismatch_names_both_shapes_and_affines(files, case, write_nifti, tmp_path) -> None:
    moved = files["affine"].copy()
    moved[0, 3] += 3.0
    files["pred"] = write_nifti(tmp_path / "moved.nii.gz", case.labels, moved)
    result = run(*refine_args(files))
    assert result.exit_code == 1
    assert "not on the same grid" in result.output
    assert str(files["ct"]) in result.output and "moved.nii.gz" in result.output
    assert "123" in result.output and "120" in result.output  # both affines' offsets printed
    assert "Traceback" not in result.output
    assert_nothing_written(files)

    files["pred"] = write_nifti(tmp_path / "small.nii.gz", case.labels[:-1], files["affine"])
    result = run(*refine_args(files))
    assert result.exit_code == 1
    assert "(64, 56, 40)" in result.output and "(63, 56, 40)" in result.output
    assert_nothing_written(files)


@pytest.mark.parametrize("problem", ["label 9", "nan probs", "4d pred", "bad rules", "not nifti", "bad npz"])
def test_bad_input_exits_1_and_writes_nothing(files, case, write_nifti, tmp_path, problem) -> None:
    extra: list[str] = []
    if problem == "label 9":
        bad = case.labels.copy()
        bad[1, 1, 1] = 9
        files["pred"] = write_nifti(tmp_path / "bad.nii.gz", bad, files["affine"])
        words = "found 9"
    elif problem == "nan probs":
        p = case.probs.copy()
        p[0, 3, 3, 3] = np.nan
        np.save(tmp_path / "p.npy", p)
        extra, words = ["--probs", str(tmp_path / "p.npy")], "NaN"
    elif problem == "4d pred":
        files["pred"] = write_nifti(tmp_path / "4d.nii.gz", case.labels[..., None], files["affine"])
        words = "must be a 3D volume"
    elif problem == "bad rules":
        (tmp_path / "r.yaml").write_text("thetaa: 0.1\n")
        extra, words = ["--rules", str(tmp_path / "r.yaml")], "unknown key 'thetaa'"
    elif problem == "not nifti":
        (tmp_path / "junk.nii.gz").write_bytes(b"not an image")
        files["pred"] = tmp_path / "junk.nii.gz"
        words = "cannot read the prediction"
    else:
        np.savez(tmp_path / "two.npz", a=case.probs, b=case.probs)
        extra, words = ["--probs", str(tmp_path / "two.npz")], "'probs'/'probabilities'"
    result = run(*refine_args(files, *extra))
    assert result.exit_code == 1, result.output
    assert words in result.output
    assert "Traceback" not in result.output
    assert_nothing_written(files)


def test_usage_errors_exit_2(files, tmp_path) -> None:
    missing = run("refine", "--ct", str(tmp_path / "none.nii.gz"), "--pred", str(files["pred"]),
                  "--out", str(files["out"] / "o.nii.gz"), "--report", str(files["out"] / "r.json"))  # fmt: skip
    assert missing.exit_code == 2 and "does not exist" in missing.output
    assert run(*refine_args(files, "--theta", "0.1")).exit_code == 2  # theta without probabilities
    args = refine_args(files)
    args[args.index("--report") + 1] = str(files["out"] / "refined.nii.gz")
    assert run(*args).exit_code == 2  # two outputs to one file
    args = refine_args(files)
    args[args.index("--out") + 1] = str(tmp_path / "nowhere" / "o.nii.gz")
    result = run(*args)
    assert result.exit_code == 2 and "does not exist" in result.output
    assert_nothing_written(files)


def test_rules_command_prints_an_editable_file(tmp_path) -> None:
    result = run("rules")
    assert result.exit_code == 0
    assert "# " in result.output  # the comments come along
    assert Rules.from_dict(yaml.safe_load(result.output)) == Rules.defaults()
    assert json.loads(run("rules", "--json").output) == Rules.defaults().to_dict()
    (tmp_path / "r.yaml").write_text("hu_window:\n  cyst: [10, -10]\n")
    bad = run("rules", "--check", str(tmp_path / "r.yaml"))
    assert bad.exit_code == 1 and "lo > hi" in bad.output


def test_help_teaches_the_command() -> None:
    result = run("refine", "--help")
    assert result.exit_code == 0
    for word in (
        "--ct",
        "--pred",
        "--probs",
        "--rules",
        "--out",
        "--report",
        "--removed",
        "Example",
        "Exit status",
    ):
        assert word in result.output
