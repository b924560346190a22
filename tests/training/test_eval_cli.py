"""eanno-eval froc / patient on AbdomenAtlas case folders with probability files and label maps."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from eanno_training.evaluation.card import CARD_BEGIN
from eanno_training.evaluation.cases import canonical, read_atlas_case
from eanno_training.evaluation.cli import main as eval_cli
from eanno_training.phantoms import generate_phantom, phantom_seeds
from eanno_training.phantoms.writer import nifti, write_atlas_case
from scipy import ndimage

THETAS = "0.001,0.01,0.1,0.3,0.6,0.9"


def oracle_probs(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Probabilities that know the truth: lesions at a per-lesion confidence, plus one FP blob in the pancreas."""
    probs = np.zeros((6, *truth.shape), np.float32)
    probs[
        truth,
        np.arange(truth.shape[0])[:, None, None],
        np.arange(truth.shape[1])[None, :, None],
        np.arange(truth.shape[2]),
    ] = 1.0
    conf = np.float32(rng.choice([0.05, 0.5, 0.95]))
    lesion = truth >= 3
    probs[:, lesion] *= conf
    probs[1, lesion] += 1 - conf  # the rest of a lesion voxel's mass goes to pancreas
    # the pancreas voxel farthest from any lesion, so the FP blob never merges with one
    far = np.where(truth == 1, ndimage.distance_transform_edt(~lesion), -1)
    i, j, k = np.unravel_index(int(np.argmax(far)), truth.shape)
    blob = (slice(i, i + 2), slice(j, j + 2), slice(k, k + 2))
    sel = truth[blob] == 1
    probs[1][blob][sel] = 0.8
    probs[5][blob][sel] = 0.2  # a faint PNET candidate: an FP below theta 0.3
    return probs


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, list[int]]:
    root = tmp_path_factory.mktemp("eval")
    gt, probs_dir, labels_dir = root / "gt", root / "probs", root / "labels"
    probs_dir.mkdir()
    labels_dir.mkdir()
    rng = np.random.default_rng(0)
    n_lesions = []
    for i, s in enumerate(phantom_seeds(3, 4)):
        ph = generate_phantom(s, spacing=(2.5, 2.5, 3.0), n_lesions=[0, 1, 2, 1][i])
        folder = write_atlas_case(ph, gt / f"case_{i}")
        case = read_atlas_case(folder)
        np.savez_compressed(probs_dir / f"case_{i}.npz", probs=oracle_probs(case.truth, rng))
        # a label map on the stored (non-canonical) grid: the perfect answer
        nib.save(nifti(ph.labels, ph.affine), labels_dir / f"case_{i}.nii.gz")
        n_lesions.append(len(ph.lesions))
    return gt, probs_dir, labels_dir, n_lesions


def test_froc_from_probability_files(tmp_path: Path, dataset) -> None:
    gt, probs_dir, _, n_lesions = dataset
    r = CliRunner().invoke(
        eval_cli,
        [
            "froc",
            "--gt-dir",
            str(gt),
            "--pred-dir",
            str(probs_dir),
            "--probs",
            "--thetas",
            THETAS,
            "--select-on",
            "before",
            "--out",
            str(tmp_path),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output.strip().splitlines()[-1])
    data = json.loads((tmp_path / "froc.json").read_text())
    assert (tmp_path / "froc.png").read_bytes()[:4] == b"\x89PNG"
    before = data["froc"]["before"]
    total = sum(n_lesions)
    assert all(p["pooled"]["lesions"] == total for p in before)
    # sensitivity never rises with theta; at the lowest theta every lesion is found and every scan has its FP
    sens = [p["pooled"]["sensitivity"] for p in before]
    assert sens == sorted(sens, reverse=True) and sens[0] == 1.0
    assert before[0]["pooled"]["fp_per_scan"] == 1.0 and before[3]["pooled"]["fp_per_scan"] == 0.0
    # theta*: the largest swept theta at which the sensitivity still reaches 0.99
    ok = [t for t, s in zip(data["froc"]["thetas"], sens, strict=True) if s >= 0.99]
    assert summary["theta_star"] == max(ok) and summary["reached"]
    assert data["froc_score"]["before"] is not None


def test_patient_table_and_model_card(tmp_path: Path, dataset) -> None:
    gt, probs_dir, _, _ = dataset
    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# Model card\n\nText that stays.\n")
    args = [
        "patient",
        "--gt-dir",
        str(gt),
        "--pred-dir",
        str(probs_dir),
        "--probs",
        "--thetas",
        THETAS,
        "--theta",
        "0.001",
        "--bootstrap",
        "200",
        "--out",
        str(tmp_path / "ev"),
        "--model-card",
        str(card),
        "--json",
    ]
    for _ in range(2):  # a second run replaces the section instead of appending another
        r = CliRunner().invoke(eval_cli, args)
        assert r.exit_code == 0, r.output
    out = json.loads(r.output.strip().splitlines()[-1])
    before = out["patient"]["before"]
    # at theta 0.001 every scan has its FP candidate: 3 lesion scans positive (TP), the normal one an FP
    assert before["confusion"] == {"tp": 3, "fp": 1, "fn": 0, "tn": 0}
    assert before["ppv"]["value"] == 0.75 and before["specificity"]["value"] == 0.0
    table = (tmp_path / "ev" / "table.md").read_text()
    assert "| Sensitivity |" in table and "| PPV |" in table and "0.6 FP regions per scan" in table
    text = card.read_text()
    assert text.startswith("# Model card\n\nText that stays.") and text.count(CARD_BEGIN) == 1
    assert (
        "False regions at the operating point (theta 0.001)" in text
        and "| outside the pancreas (removed) |" in text
    )


def test_label_maps_on_their_own_grid(tmp_path: Path, dataset) -> None:
    gt, _, labels_dir, n_lesions = dataset
    r = CliRunner().invoke(
        eval_cli,
        [
            "patient",
            "--gt-dir",
            str(gt),
            "--pred-dir",
            str(labels_dir),
            "--bootstrap",
            "100",
            "--out",
            str(tmp_path),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    after = json.loads(r.output.strip().splitlines()[-1])["patient"]["after"]
    assert after["lesion_sensitivity"] == 1.0 and after["fp_regions_per_scan"] == 0.0
    assert after["confusion"] == {"tp": 3, "fp": 0, "fn": 0, "tn": 1}


def test_user_errors_are_clear(tmp_path: Path, dataset) -> None:
    gt, probs_dir, labels_dir, _ = dataset
    run = CliRunner().invoke
    r = run(eval_cli, ["froc", "--gt-dir", str(gt), "--out", str(tmp_path)])
    assert r.exit_code == 2 and "exactly one of --pred-dir" in r.output
    r = run(eval_cli, ["froc", "--gt-dir", str(gt), "--phantoms", "2", "--shipped", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "--gt-dir DIR or --phantoms N" in r.output
    r = run(
        eval_cli,
        [
            "froc",
            "--gt-dir",
            str(gt),
            "--pred-dir",
            str(labels_dir),
            "--hit-rule",
            "dice",
            "--out",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 2 and "iou:T" in r.output
    bad = tmp_path / "bad"
    bad.mkdir()
    np.save(bad / "case_0.npy", np.zeros((6, 2, 2, 2), np.float32))
    r = run(
        eval_cli,
        [
            "froc",
            "--gt-dir",
            str(gt),
            "--pred-dir",
            str(bad),
            "--probs",
            "--thetas",
            "0.1",
            "--out",
            str(tmp_path),
        ],
    )
    assert (
        r.exit_code == 1
        and "case_0.npy: probabilities have shape" in r.output
        and "Traceback" not in r.output
    )
    img = nib.load(labels_dir / "case_1.nii.gz")
    arr, aff = canonical(img)
    nib.save(
        nifti(np.asarray(arr)[::-1].copy(), aff), bad / "case_0.nii.gz"
    )  # a flipped copy of another case
    r = run(eval_cli, ["froc", "--gt-dir", str(gt), "--pred-dir", str(bad), "--out", str(tmp_path)])
    assert r.exit_code == 1 and "case_0.nii.gz: not on the grid of case case_0" in r.output


def test_patient_when_the_target_is_not_reached(tmp_path: Path, dataset) -> None:
    gt, probs_dir, _, _ = dataset
    r = CliRunner().invoke(
        eval_cli,
        [
            "patient",
            "--gt-dir",
            str(gt),
            "--pred-dir",
            str(probs_dir),
            "--probs",
            "--thetas",
            "0.6,0.9",
            "--select-on",
            "before",
            "--bootstrap",
            "100",
            "--out",
            str(tmp_path),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.output.strip().splitlines()[-1])
    assert out["reached"] is False and out["theta_star"] is None
    data = json.loads((tmp_path / "patient.json").read_text())
    sens = [p["pooled"]["sensitivity"] for p in data["froc"]["before"]]
    best = 0.6 if sens[0] > sens[1] else 0.9  # the largest theta among the most sensitive
    assert sens[0] < 0.99 and data["theta"] == data["theta_star"]["best_theta"] == best
    assert "not reached" in (tmp_path / "table.md").read_text()
