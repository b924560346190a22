"""Training volumes from a folder of AbdomenAtlas-layout cases (read by eanno_training.data)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from .data import DataError, read_atlas_case
from .settings import RunConfig
from .trainset import to_model_grid

log = logging.getLogger(__name__)
Volumes = list[tuple[torch.Tensor, torch.Tensor]]


def case_folders(root: Path) -> list[Path]:
    """Sub-folders holding a ct.nii.gz, sorted by name."""
    cases = sorted(p for p in Path(root).iterdir() if (p / "ct.nii.gz").is_file())
    if not cases:
        raise DataError(f"{root}: no case folders with a ct.nii.gz (AbdomenAtlas layout: CASE/ct.nii.gz + CASE/segmentations/)")
    return cases


def atlas_split(cfg: RunConfig, root: Path, label_table: str | None, val_fraction: float = 0.1) -> tuple[Volumes, Volumes]:
    """Every labelled case on the model grid; the last val_fraction of the sorted cases validate."""
    d = cfg.data
    vols: Volumes = []
    for folder in case_folders(root):
        case = read_atlas_case(folder, table=label_table)
        if case.labels is None:
            log.warning("%s: no labels, skipped", folder)
            continue
        x, y = to_model_grid(np.asarray(case.image), case.labels, case.spacing, d.spacing, d.clip, d.mean, d.std)
        assert y is not None
        vols.append((x, y))
    if not vols:
        raise DataError(f"{root}: no case has labels")
    n_val = int(round(len(vols) * val_fraction)) if len(vols) > 1 else 0
    n_val = max(n_val, 1) if len(vols) > 2 else n_val
    return vols[: len(vols) - n_val], vols[len(vols) - n_val :]
