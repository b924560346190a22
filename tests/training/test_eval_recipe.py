"""The real-data recipe of training/README.md ("Real data, end to end"), every step on tiny phantoms
written in that step's format: AbdomenAtlas pre-training, MSD / PANORAMA conversion, fine-tuning,
threshold and rules calibration, evaluation, export with the calibrated threshold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from eanno_export.cli import main as export_cli
from eanno_postproc import load_rules
from eanno_training.calibration.cli import main as calibrate_cli
from eanno_training.checkpoint import load_checkpoint
from eanno_training.cli import main as train_cli
from eanno_training.converters.cli import main as convert_cli
from eanno_training.converters.writers import write_msd_case, write_panorama_case
from eanno_training.evaluation.cli import main as eval_cli
from eanno_training.models import tiny_config
from eanno_training.phantoms import generate_phantom
from eanno_training.phantoms.writer import write_atlas_case

SHAPE, SPACING = (48, 40, 24), (4.0, 4.0, 5.0)
THETAS = "0.01,0.05,0.1,0.15,0.2,0.3,0.5"


def _phantom(seed: int, n_lesions: int = 1):
    return generate_phantom(seed, shape=SHAPE, spacing=SPACING, n_lesions=n_lesions)


def _ok(cli, args: list[str]) -> str:
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, (args, r.output)
    return r.output


@pytest.mark.slow
def test_real_data_recipe_end_to_end(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "model": tiny_config("decoder").to_dict(),
                "data": {
                    "spacing": [5.0, 5.0, 5.0],
                    "clip": [-1000.0, 1000.0],
                    "mean": 50.0,
                    "std": 200.0,
                    "val_phantoms": 1,
                    "val_patches": 2,
                },
                "train": {"epochs": 1, "iters_per_epoch": 2, "batch_size": 2, "lr": 0.003},
            }
        )
    )
    # 1. pre-train on the AbdomenAtlas layout with a class set of its own (organ + lesion union)
    table = tmp_path / "atlas_table.yaml"
    table.write_text(
        yaml.safe_dump(
            {
                "target": ["background", "pancreas", "lesion"],
                "source": {"pancreas": "pancreas", "pancreatic_lesion": "lesion"},
            }
        )
    )
    for i in range(2):
        write_atlas_case(_phantom(40 + i), tmp_path / "atlas" / f"case_{i}")
    _ok(
        train_cli,
        [
            "pretrain",
            "--config",
            str(cfg),
            "--data",
            str(tmp_path / "atlas"),
            "--label-table",
            str(table),
            "--out",
            str(tmp_path / "pre"),
            "--no-progress",
        ],
    )
    # 2. convert MSD Task07 (fine-tuning) and PANORAMA (calibration) to the 6-class map
    for i in range(3):
        ph = _phantom(50 + i)
        write_msd_case(tmp_path / "Task07_Pancreas", f"pancreas_{i:03d}", ph.ct, ph.labels, ph.affine)
        ph = _phantom(60 + i, n_lesions=1 + i % 2)
        write_panorama_case(tmp_path / "panorama", f"10000{i}_00001", ph.ct, ph.labels, ph.affine)
    msd = json.loads(
        _ok(
            convert_cli,
            ["msd", str(tmp_path / "Task07_Pancreas"), "--out", str(tmp_path / "data" / "msd"), "--json"],
        )
    )
    assert len(msd["cases"]) == 3
    _ok(convert_cli, ["panorama", str(tmp_path / "panorama"), "--out", str(tmp_path / "data" / "calib")])
    # 3. fine-tune on the converted MSD cases from the pre-trained weights (new 6-class head)
    _ok(
        train_cli,
        [
            "finetune",
            "--config",
            str(cfg),
            "--data",
            str(tmp_path / "data" / "msd"),
            "--init",
            str(tmp_path / "pre" / "last.pt"),
            "--out",
            str(tmp_path / "ft"),
            "--no-progress",
        ],
    )
    # 4. calibrate the threshold on the converted PANORAMA cases (a 1-epoch model: select on the candidates)
    out = _ok(
        calibrate_cli,
        [
            "threshold",
            "--gt-dir",
            str(tmp_path / "data" / "calib"),
            "--checkpoint",
            str(tmp_path / "ft" / "last.pt"),
            "--thetas",
            THETAS,
            "--select-on",
            "before",
            "--out",
            str(tmp_path / "calibrated.pt"),
            "--json",
        ],
    )
    theta = json.loads(out.strip().splitlines()[-1])["theta"]
    assert load_checkpoint(tmp_path / "calibrated.pt").meta["theta"] == theta
    # 5. calibrate the rules on the fine-tuning labels
    _ok(
        calibrate_cli,
        [
            "rules",
            "--gt-dir",
            str(tmp_path / "data" / "msd"),
            "--min-lesions",
            "2",
            "--out",
            str(tmp_path / "site_rules.yaml"),
        ],
    )
    rules = load_rules(tmp_path / "site_rules.yaml")
    assert rules.hu_window["pdac"] != (-206.0, 185.0)  # learned from the three MSD lesions
    # 6. evaluate on held-out cases with the calibrated model and rules
    for i in range(2):
        write_atlas_case(_phantom(70 + i, n_lesions=i), tmp_path / "test" / f"case_{i}")
    out = _ok(
        eval_cli,
        [
            "froc",
            "--gt-dir",
            str(tmp_path / "test"),
            "--checkpoint",
            str(tmp_path / "calibrated.pt"),
            "--rules",
            str(tmp_path / "site_rules.yaml"),
            "--thetas",
            THETAS,
            "--out",
            str(tmp_path / "eval"),
            "--json",
        ],
    )
    froc = json.loads((tmp_path / "eval" / "froc.json").read_text())
    assert froc["froc"]["scans"] == 2 and froc["froc"]["before"][0]["pooled"]["lesions"] == 1
    # 7. export: the repository carries the calibrated threshold, which the server reports
    _ok(
        export_cli,
        [
            "repository",
            "--flavor",
            "python-onnxruntime",
            "--checkpoint",
            str(tmp_path / "calibrated.pt"),
            "--out",
            str(tmp_path / "repo"),
        ],
    )
    configs = "\n".join(p.read_text() for p in (tmp_path / "repo").rglob("config.pbtxt"))
    assert '"theta"' in configs and repr(float(theta)) in configs
