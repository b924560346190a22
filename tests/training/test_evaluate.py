"""Evaluation: lesion matching rules on hand-made maps, and the evaluate JSON on tiny phantoms."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from eanno_training.checkpoint import save_checkpoint
from eanno_training.cli import main
from eanno_training.evaluate import dice, match_lesions


def test_lesion_matching_counts_hits_and_false_positives() -> None:
    truth = np.zeros((20, 20, 20), np.uint8)
    truth[2:18, 2:18, 2:18] = 1
    truth[3:6, 3:6, 3:6] = 3  # PDAC, found
    truth[10:13, 10:13, 10:13] = 4  # cyst, missed
    truth[14:16, 3:5, 14:16] = 5  # PNET, found by a prediction of another lesion class
    pred = np.zeros_like(truth)
    pred[2:18, 2:18, 2:18] = 1
    pred[4:5, 4:5, 4:5] = 3
    pred[15, 4, 15] = 4
    pred[7:9, 15:17, 7:9] = 5  # overlaps no lesion: a false positive
    total, hit, fp, right = match_lesions(pred, truth)
    assert total == {3: 1, 4: 1, 5: 1} and hit == {3: 1, 4: 0, 5: 1} and fp == 1
    assert right == {3: 1, 4: 0, 5: 0}  # the PNET was found as a cyst: detected, wrong class
    assert dice(pred > 0, truth > 0) == pytest.approx(1.0)
    assert dice(np.zeros(3, bool), np.zeros(3, bool)) == 1.0


@pytest.mark.slow
def test_evaluate_json_on_two_tiny_phantoms(tiny_model, tmp_path: Path) -> None:
    model, cfg, meta = tiny_model
    meta = {**meta, "theta": 0.2}
    ck = save_checkpoint(tmp_path / "tiny.pt", model, cfg, meta)
    r = CliRunner().invoke(
        main,
        [
            "evaluate",
            "--checkpoint",
            str(ck),
            "--phantoms",
            "2",
            "--seed",
            "5",
            "--shape",
            "48",
            "40",
            "24",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["scans"] == 2 and out["theta"] == 0.2
    assert 0.0 <= out["pancreas_dice"] <= 1.0
    assert set(out["lesion_sensitivity"]) == {
        "pancreatic_pdac",
        "pancreatic_cyst",
        "pancreatic_pnet",
        "pooled",
    }
    for v in list(out["lesion_sensitivity"].values()) + list(out["lesion_sensitivity_before"].values()):
        assert v is None or 0.0 <= v <= 1.0
    assert out["fp_per_scan"]["after"] <= out["fp_per_scan"]["before"]
    for key in ("patient_specificity", "lesion_class_accuracy"):
        assert out[key] is None or 0.0 <= out[key] <= 1.0
    r = CliRunner().invoke(main, ["evaluate", "--checkpoint", str(tmp_path / "nope.pt"), "--phantoms", "1"])
    assert r.exit_code == 2 and "nope.pt" in r.output
