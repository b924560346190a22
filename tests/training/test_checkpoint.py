"""Checkpoint format eanno-checkpoint/1: round trip, atomic write, clear errors, the shipped model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from eanno_training.checkpoint import (
    FORMAT,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
    shipped_checkpoint_path,
)


def test_round_trip_gives_the_same_network(tiny_model, tmp_path: Path) -> None:
    model, cfg, meta = tiny_model
    path = save_checkpoint(tmp_path / "m.pt", model, cfg, meta, resume={"epoch": 3})
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left behind
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == FORMAT and raw["model"]["arch"] == "transunet"
    ck = load_checkpoint(path)
    assert ck.config == cfg and ck.meta == meta and ck.resume == {"epoch": 3}
    x = torch.randn(1, 1, *cfg.patch_size)
    with torch.no_grad():
        torch.testing.assert_close(ck.build()(x), model(x))


def test_bad_files_raise_errors_naming_the_file(tiny_model, tmp_path: Path) -> None:
    model, cfg, meta = tiny_model
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"format": "something/2"}, other)
    with pytest.raises(CheckpointError, match="expected 'eanno-checkpoint/1'"):
        load_checkpoint(other)
    bad_meta = dict(meta)
    del bad_meta["spacing"]
    with pytest.raises(CheckpointError, match="spacing"):
        save_checkpoint(tmp_path / "x.pt", model, cfg, bad_meta)


def test_shipped_checkpoint_loads_and_is_small() -> None:
    path = shipped_checkpoint_path()
    if not path.is_file():
        pytest.skip(f"shipped weights not present at {path}")
    assert path.stat().st_size <= 20 * 2**20
    ck = load_checkpoint()
    assert ck.meta["classes"][0] == "background" and len(ck.meta["classes"]) == 6
    assert 0 < ck.meta["theta"] < 1 and ck.meta["train"]["command"].startswith("eanno-train")
    model = ck.build()
    with torch.no_grad():
        p = model(torch.zeros(1, 1, *ck.config.patch_size))
    torch.testing.assert_close(p.sum(1), torch.ones(1, *ck.config.patch_size), atol=1e-4, rtol=0)
