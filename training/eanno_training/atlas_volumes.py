"""Training volumes from a folder of AbdomenAtlas-layout cases (read by eanno_training.data)."""

from __future__ import annotations

import logging
from pathlib import Path

from .data import DataError, Prepared, prepare, read_atlas_case
from .settings import RunConfig

log = logging.getLogger(__name__)
Volumes = list[Prepared]


def case_folders(root: Path) -> list[Path]:
    """Sub-folders holding a ct.nii.gz, sorted by name."""
    cases = sorted(p for p in Path(root).iterdir() if (p / "ct.nii.gz").is_file())
    if not cases:
        raise DataError(
            f"{root}: no case folders with a ct.nii.gz (AbdomenAtlas layout: CASE/ct.nii.gz + CASE/segmentations/)"
        )
    return cases


def atlas_split(
    cfg: RunConfig, root: Path, label_table: str | None, val_fraction: float = 0.1
) -> tuple[Volumes, Volumes]:
    """Every labelled case on the model grid; the last val_fraction of the sorted cases validate."""
    d = cfg.data
    vols: Volumes = []
    for folder in case_folders(root):
        case = read_atlas_case(folder, table=label_table)
        if case.labels is None:
            log.warning("%s: no labels, skipped", folder)
            continue
        vols.append(prepare(case, d.spacing, d.clip))
    if not vols:
        raise DataError(f"{root}: no case has labels")
    n_val = int(round(len(vols) * val_fraction)) if len(vols) > 1 else 0
    n_val = max(n_val, 1) if len(vols) > 2 else n_val
    return vols[: len(vols) - n_val], vols[len(vols) - n_val :]
