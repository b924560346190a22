"""`eanno-train finetune --from-reviewed`: phantoms with simulated corrections in client output folders."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from eanno_training.checkpoint import CLASS_NAMES, load_checkpoint, make_meta, save_checkpoint
from eanno_training.cli import main
from eanno_training.models import build_model, tiny_config
from eanno_training.phantoms import generate_phantom
from eanno_training.reviewed import read_case, reviewed_cases

SPACING = (5.0, 5.0, 5.0)


def _status(case: Path, status: str) -> None:
    (case / "review.json").write_text(
        json.dumps(
            {
                "format": "eanno-review-status/1",
                "case": case.name,
                "status": status,
                "reviewer": "alice",
                "comment": "",
                "time": "2026-11-27T12:00:00+00:00",
                "history": [],
            }
        )
    )


def _save(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    nib.save(nib.Nifti1Image(data, affine), str(path))


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory) -> Path:
    """Four annotated phantom cases: the model's labels miss the lesions, reviewers fixed some of them.

    c1 approved with revised.nii.gz (the truth); c2 approved as it was (its labels are the truth);
    c3 needs changes (left out); c4 approved with a revision (held out, the last of three approved).
    The CT is found through report.json's input path for c1 and as CASE/ct.nii.gz for the others.
    """
    root = tmp_path_factory.mktemp("reviewed")
    for i, (name, status, revised) in enumerate(
        [
            ("c1", "approved", True),
            ("c2", "approved", False),
            ("c3", "needs_changes", True),
            ("c4", "approved", True),
        ]
    ):
        ph = generate_phantom(10 + i, shape=(24, 24, 12), spacing=SPACING, n_lesions=1)
        case = root / name
        case.mkdir()
        model_labels = np.where(ph.labels >= 3, 1, ph.labels).astype(np.uint8)  # the model missed the lesion
        _save(case / "labels.nii.gz", ph.labels if not revised else model_labels, ph.affine)
        if revised:
            _save(case / "revised.nii.gz", ph.labels, ph.affine)
        if name == "c1":
            _save(root / "c1_source.nii.gz", ph.ct, ph.affine)
            (case / "report.json").write_text(json.dumps({"input": {"path": str(root / "c1_source.nii.gz")}}))
        else:
            _save(case / "ct.nii.gz", ph.ct, ph.affine)
        _status(case, status)
    return root


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    cfg = tiny_config("decoder")
    meta = make_meta(list(CLASS_NAMES), SPACING, cfg.patch_size, mean=50.0, std=200.0, theta=0.01)
    return save_checkpoint(tmp_path_factory.mktemp("base") / "base.pt", build_model(cfg), cfg, meta)


def _run_config(path: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "model": tiny_config("decoder").to_dict(),
                "data": {"spacing": [2.0, 2.0, 2.0], "val_phantoms": 0, "val_patches": 2},
                "train": {"epochs": 1, "iters_per_epoch": 1, "batch_size": 2},
            }
        )
    )
    return path


def test_approved_cases_and_their_truth(reviewed: Path) -> None:
    cases = reviewed_cases(reviewed)
    assert [(c.name, c.truth.name, c.corrected) for c in cases] == [
        ("c1", "revised.nii.gz", True),
        ("c2", "labels.nii.gz", False),
        ("c4", "revised.nii.gz", True),
    ]
    assert cases[0].ct == reviewed / "c1_source.nii.gz"
    ct, labels, spacing = read_case(cases[0])
    truth = np.asarray(nib.as_closest_canonical(nib.load(str(reviewed / "c1" / "revised.nii.gz"))).dataobj)
    assert (labels >= 3).any() and np.array_equal(labels, truth) and ct.shape == labels.shape
    assert spacing == SPACING


def _finetune(reviewed: Path, base: Path, out: Path, lr: str) -> dict:
    out.parent.mkdir(parents=True)
    res = CliRunner().invoke(
        main,
        [
            "finetune",
            "--from-reviewed",
            str(reviewed),
            "--init",
            str(base),
            "--config",
            str(_run_config(out.parent / "tiny.yaml")),
            "--out",
            str(out),
            "--lr",
            lr,
            "--device",
            "cpu",
            "--no-progress",
            "--threads",
            "1",
        ],
    )
    assert res.exit_code == 0, res.output
    return json.loads(res.output.strip().splitlines()[-1])


@pytest.mark.slow
def test_whole_model_starts_from_the_base_and_learns(reviewed: Path, base: Path, tmp_path: Path) -> None:
    start = load_checkpoint(base)
    # with a vanishing learning rate every parameter, the class head included, stays the base's
    out = _finetune(reviewed, base, tmp_path / "still" / "run", "1e-12")
    assert (out["train"], out["held_out"], out["corrected"]) == (["c1", "c2"], ["c4"], ["c1", "c4"])
    held = tmp_path / "still" / "run" / "held_out" / "c4"
    assert out["held_out_dir"] == str(held.parent)
    assert (held / "ct.nii.gz").resolve() == (reviewed / "c4" / "ct.nii.gz").resolve()
    assert (held / "combined_labels.nii.gz").resolve() == (reviewed / "c4" / "revised.nii.gz").resolve()
    still = load_checkpoint(tmp_path / "still" / "run" / "last.pt")
    params = dict(build_model(start.config).named_parameters()).keys()
    assert any(k.startswith(("head.", "mask_decoder.class_head.")) for k in params)
    for k in params:
        torch.testing.assert_close(still.state_dict[k], start.state_dict[k], atol=1e-6, rtol=0)
    # the base's grid, normalisation and theta are kept; the reviewed cases are recorded
    assert (still.meta["spacing"], still.meta["theta"]) == ([5.0, 5.0, 5.0], 0.01)
    assert still.meta["train"]["reviewed"]["train"] == ["c1", "c2"]
    # with a real learning rate the weights move
    _finetune(reviewed, base, tmp_path / "moved" / "run", "0.003")
    moved = load_checkpoint(tmp_path / "moved" / "run" / "last.pt")
    assert any(not torch.allclose(moved.state_dict[k], start.state_dict[k]) for k in params)
    # the held-out folder is what eanno-eval reads: before (base) and after (fine-tuned) on the same case
    from eanno_training.evaluation.cli import main as eval_main

    for ck in (base, tmp_path / "moved" / "run" / "best.pt"):
        res = CliRunner().invoke(
            eval_main,
            [
                "froc",
                "--gt-dir",
                str(held.parent),
                "--checkpoint",
                str(ck),
                "--out",
                str(tmp_path / "eval" / ck.stem),
                "--json",
            ],
        )
        assert res.exit_code == 0, res.output
        figures = json.loads(res.output.strip().splitlines()[-1])
        assert figures["cases"].endswith("(1 cases)") and {"before", "after"} <= set(figures)


def test_usage_errors(reviewed: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        main, ["finetune", "--from-reviewed", str(reviewed), "--phantoms", "2", "--out", str(tmp_path / "r")]
    )
    assert res.exit_code == 2 and "leave out --data and --phantoms" in res.output
    (tmp_path / "none" / "x").mkdir(parents=True)
    _status(tmp_path / "none" / "x", "needs_changes")
    res = CliRunner().invoke(
        main,
        [
            "finetune",
            "--from-reviewed",
            str(tmp_path / "none"),
            "--out",
            str(tmp_path / "r"),
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 1 and "no approved case folders" in res.output
