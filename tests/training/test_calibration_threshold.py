"""eanno-calibrate threshold: the predictor on a calibration set, theta* written into the checkpoint META."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from eanno_training.calibration import ThresholdError, write_theta
from eanno_training.calibration.cli import main as calibrate_cli
from eanno_training.checkpoint import CLASS_NAMES, load_checkpoint, make_meta, save_checkpoint
from eanno_training.models import build_model, tiny_config

THETAS = "0.02,0.1,0.14,0.18,0.25,0.5"


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny TransUNet at 5 mm: its probabilities are near 1/6 everywhere, so low thresholds
    mark whole regions as candidates and high ones nothing (enough to exercise the plumbing)."""
    torch.manual_seed(0)
    cfg = tiny_config()
    meta = make_meta(
        CLASS_NAMES, (5.0, 5.0, 5.0), cfg.patch_size, mean=0.0, std=500.0, train={"note": "untrained, tests"}
    )
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "tiny.pt", build_model(cfg), cfg, meta)


def test_threshold_written_into_meta(tmp_path: Path, tiny_checkpoint: Path) -> None:
    out, report = tmp_path / "calibrated.pt", tmp_path / "sweep.json"
    r = CliRunner().invoke(
        calibrate_cli,
        [
            "threshold",
            "--phantoms",
            "3",
            "--seed",
            "5",
            "--phantom-spacing",
            "3",
            "--checkpoint",
            str(tiny_checkpoint),
            "--thetas",
            THETAS,
            "--select-on",
            "before",
            "--target",
            "0.99",
            "--out",
            str(out),
            "--report",
            str(report),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    res = json.loads(r.output.strip().splitlines()[-1])
    sweep = json.loads(report.read_text())
    sens = [p["pooled"]["sensitivity"] for p in sweep["froc"]["before"]]
    expected = max(
        t for t, s in zip(sweep["froc"]["thetas"], sens, strict=True) if s is not None and s >= 0.99
    )
    assert res["theta"] == expected == sweep["theta_star"]["theta"]
    ck = load_checkpoint(out)
    assert ck.meta["theta"] == expected
    assert (
        ck.meta["train"]["theta_calibration"]["target"] == 0.99
        and ck.meta["train"]["note"] == "untrained, tests"
    )
    src = load_checkpoint(tiny_checkpoint)
    assert src.meta["theta"] == 0.003  # the input is left alone
    assert all(torch.equal(src.state_dict[k], ck.state_dict[k]) for k in src.state_dict)


def test_unreachable_target_writes_nothing(tmp_path: Path, tiny_checkpoint: Path) -> None:
    out = tmp_path / "never.pt"
    r = CliRunner().invoke(
        calibrate_cli,
        [
            "threshold",
            "--phantoms",
            "2",
            "--seed",
            "5",
            "--phantom-spacing",
            "3",
            "--checkpoint",
            str(tiny_checkpoint),
            "--thetas",
            "0.9",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 1 and "no swept theta reaches sensitivity 0.99" in r.output and not out.exists()
    # --or-best: the most sensitive theta is written, and META says the target was not reached
    r = CliRunner().invoke(
        calibrate_cli,
        [
            "threshold",
            "--phantoms",
            "2",
            "--seed",
            "5",
            "--phantom-spacing",
            "3",
            "--checkpoint",
            str(tiny_checkpoint),
            "--thetas",
            "0.5,0.9",
            "--out",
            str(out),
            "--or-best",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    record = load_checkpoint(out).meta["train"]["theta_calibration"]
    assert record["reached"] is False and record["theta"] == load_checkpoint(out).meta["theta"] in (0.5, 0.9)


def test_write_theta_checks(tmp_path: Path, tiny_checkpoint: Path) -> None:
    with pytest.raises(ThresholdError, match="theta must be in"):
        write_theta(tiny_checkpoint, tmp_path / "x.pt", 0.0, {})
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    r = CliRunner().invoke(
        calibrate_cli,
        ["threshold", "--phantoms", "1", "--checkpoint", str(junk), "--out", str(tmp_path / "y.pt")],
    )
    assert r.exit_code == 1 and "junk.pt: not a readable torch checkpoint" in r.output
