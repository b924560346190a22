"""Training: the loss falls, pre-train -> fine-tune keeps the encoder, the CLI, DDP with gloo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner
from eanno_training.checkpoint import load_checkpoint
from eanno_training.cli import main
from eanno_training.data import PatchDataset, Prepared, training_phantoms
from eanno_training.distributed import DistInfo
from eanno_training.losses import segmentation_loss
from eanno_training.models import build_model, tiny_config
from eanno_training.phantoms import generate_phantom, write_atlas_case
from eanno_training.train import TrainConfig, load_pretrained, train

SPACING = (5.0, 5.0, 5.0)


def _tiny_run_config(path: Path, epochs: int = 1, iters: int = 2, val: int = 1) -> Path:
    """A run config YAML for a tiny model on 5 mm phantoms."""
    model = tiny_config("decoder").to_dict()
    path.write_text(
        yaml.safe_dump(
            {
                "model": model,
                "data": {
                    "spacing": list(SPACING),
                    "clip": [-1000.0, 1000.0],
                    "mean": 50.0,
                    "std": 200.0,
                    "val_phantoms": val,
                    "val_patches": 2,
                },
                "train": {"epochs": epochs, "iters_per_epoch": iters, "batch_size": 2, "lr": 0.003},
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def tiny_volumes() -> list[Prepared]:
    return training_phantoms(2, 3, SPACING)


@pytest.mark.slow
def test_two_epochs_on_tiny_phantoms_lower_the_loss(tiny_volumes, tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = tiny_config("decoder")
    intensity = {"clip": [-1000.0, 1000.0], "mean": 50.0, "std": 200.0}
    ds = PatchDataset(
        tiny_volumes, cfg.patch_size, intensity=intensity, samples_per_epoch=8, seed=0, augment=None
    )
    fixed = [ds[i] for i in range(4)]
    x, y = torch.stack([a["image"] for a in fixed]), torch.stack([a["label"] for a in fixed])
    model = build_model(cfg)

    def loss_now() -> float:
        torch.manual_seed(1)  # the same sampled points for the mask losses
        with torch.no_grad():
            return float(segmentation_loss(model.forward_train(x), y, cfg.num_classes))

    before = loss_now()
    tcfg = TrainConfig(epochs=2, batch_size=2, lr=3e-3, progress=False)
    meta = {
        "classes": ["c"] * 6,
        "spacing": list(SPACING),
        "patch_size": list(cfg.patch_size),
        "intensity": {"clip": [-1000, 1000], "mean": 50.0, "std": 200.0},
        "theta": 0.003,
        "step": 0.5,
        "train": {},
    }
    history = train(model, cfg, ds, ds, tcfg, meta, tmp_path, DistInfo())
    after = loss_now()
    assert len(history) == 2 and all(len(h["val_dice"]) == 6 for h in history)
    assert after < before, f"loss did not fall: {before:.3f} -> {after:.3f}"
    # resume continues from the saved epoch and optimizer state, for more epochs than the first run had:
    # the extra epoch must train (the first run's schedule ended at LR 0)
    saved = load_checkpoint(tmp_path / "last.pt").state_dict
    more = train(
        build_model(cfg),
        cfg,
        ds,
        None,
        TrainConfig(epochs=3, batch_size=2, progress=False),
        meta,
        tmp_path,
        DistInfo(),
        resume=tmp_path / "last.pt",
    )
    assert [h["epoch"] for h in more] == [0, 1, 2]
    resumed = load_checkpoint(tmp_path / "last.pt").state_dict
    assert any(not torch.equal(saved[k], resumed[k]) for k in saved), (
        "the resumed epoch did not change the weights"
    )


def test_finetune_head_swap_keeps_encoder_weights() -> None:
    torch.manual_seed(0)
    pre = build_model(tiny_config("decoder", num_classes=3))
    torch.manual_seed(1)
    fine = build_model(tiny_config("decoder", num_classes=6))
    loaded, skipped = load_pretrained(fine, pre.state_dict())
    sd_pre, sd_fine = pre.state_dict(), fine.state_dict()
    enc = [k for k in sd_pre if k.startswith("encoder.")]
    assert enc and all(torch.equal(sd_pre[k], sd_fine[k]) for k in enc)
    assert all(k in loaded for k in enc)
    assert {k for k in skipped} == {"mask_decoder.class_head.weight", "mask_decoder.class_head.bias"}
    assert sd_fine["mask_decoder.class_head.weight"].shape[0] == 7  # 6 classes + no-object


@pytest.mark.slow
def test_cli_pretrain_then_finetune(tmp_path: Path) -> None:
    cfg = _tiny_run_config(tmp_path / "tiny.yaml", val=1)
    table = tmp_path / "table.yaml"
    table.write_text(
        yaml.safe_dump(
            {
                "target": ["background", "pancreas", "lesion"],
                "source": {
                    "pancreas": "pancreas",
                    "pancreatic_duct": "pancreas",
                    "pancreatic_pdac": "lesion",
                    "pancreatic_cyst": "lesion",
                    "pancreatic_pnet": "lesion",
                },
            }
        )
    )
    data = tmp_path / "atlas"
    for i in range(3):  # AbdomenAtlas-layout cases on disk, read back through the label table
        write_atlas_case(
            generate_phantom(20 + i, shape=(48, 40, 24), spacing=(4.0, 4.0, 5.0), n_lesions=1),
            data / f"case_{i}",
        )
    runner = CliRunner()
    r = runner.invoke(
        main,
        [
            "pretrain",
            "--config",
            str(cfg),
            "--data",
            str(data),
            "--label-table",
            str(table),
            "--out",
            str(tmp_path / "pre"),
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    pre = load_checkpoint(tmp_path / "pre" / "last.pt")
    assert pre.meta["classes"] == ["background", "pancreas", "lesion"] and pre.config.num_classes == 3
    r = runner.invoke(
        main,
        [
            "finetune",
            "--config",
            str(cfg),
            "--phantoms",
            "1",
            "--init",
            str(tmp_path / "pre" / "last.pt"),
            "--out",
            str(tmp_path / "ft"),
            "--export",
            str(tmp_path / "ship.pt"),
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output.strip().splitlines()[-1])["epochs"] == 1
    ship = load_checkpoint(tmp_path / "ship.pt")
    assert ship.config.num_classes == 6 and ship.resume == {} and ship.meta["train"]["kind"] == "finetune"
    # user errors: exit 2 (usage) or 1 (bad file), no traceback
    r = runner.invoke(main, ["finetune", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "--data DIR or --phantoms N" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {width: 3}\n")
    r = runner.invoke(
        main, ["finetune", "--config", str(bad), "--phantoms", "1", "--out", str(tmp_path / "x")]
    )
    assert r.exit_code == 1 and "bad.yaml" in r.output and "width" in r.output


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_ddp_gloo_two_processes(tmp_path: Path) -> None:
    cfg = _tiny_run_config(tmp_path / "tiny.yaml", val=1)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "eanno_training",
        "finetune",
        "--config",
        str(cfg),
        "--phantoms",
        "1",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "ddp"),
        "--no-progress",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=220, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ck = load_checkpoint(tmp_path / "ddp" / "last.pt")
    assert ck.meta["train"]["world_size"] == 2
    assert len(ck.resume["history"]) == 1 and len(ck.resume["history"][0]["val_dice"]) == 6


def test_class_weights_weigh_the_cross_entropy() -> None:
    """A lesion weight above 1 raises the loss of a patch whose lesion voxels are predicted wrong."""
    logits = torch.zeros(1, 6, 4, 4, 4)
    logits[:, 0] = 5.0  # background everywhere: right on the background half, wrong on the PDAC half
    target = torch.zeros(1, 4, 4, 4, dtype=torch.long)
    target[0, :2] = 3
    plain = segmentation_loss({"logits": logits}, target, 6)
    same = segmentation_loss({"logits": logits}, target, 6, torch.ones(6))
    weighted = segmentation_loss({"logits": logits}, target, 6, torch.tensor([1.0, 1, 1, 3, 3, 3]))
    assert torch.isclose(plain, same)
    # cross-entropy is the weighted mean over voxels: (1 * ~0 + 3 * ~5) / 4 against (~0 + ~5) / 2
    assert weighted - plain > 1.0


def test_class_weights_of_the_wrong_length_are_refused(tmp_path: Path) -> None:
    """train() names the key when train.class_weights does not have one value per class."""
    cfg = tiny_config("unet")
    model = build_model(cfg)
    tcfg = TrainConfig(epochs=1, progress=False, class_weights=(1.0, 2.0))
    with pytest.raises(ValueError, match="class_weights has 2 values for 6 classes"):
        train(model, cfg, [], None, tcfg, {}, tmp_path, DistInfo())
