"""Training runs from a RunConfig: data on the model grid, META, initialisation, the shipped export."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import CLASS_NAMES, load_checkpoint, make_meta, save_checkpoint
from .data import Augment, PatchDataset, Prepared, Sampling, training_phantoms
from .distributed import DistInfo
from .models import build_model
from .settings import RunConfig
from .train import load_pretrained, seed_everything, train

log = logging.getLogger(__name__)
Volumes = list[Prepared]


def meta_for(cfg: RunConfig, classes: list[str], provenance: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint META of a run."""
    d = cfg.data
    return make_meta(
        classes,
        d.spacing,
        cfg.model.patch_size,
        d.mean,
        d.std,
        theta=cfg.theta,
        step=cfg.step,
        clip=d.clip,
        train=provenance,
    )


def phantom_split(cfg: RunConfig, n: int, seed: int) -> tuple[Volumes, Volumes]:
    """Training and validation phantoms on the model grid (validation seeds are a separate stream)."""
    d = cfg.data
    train_v = training_phantoms(n, seed, d.spacing, clip=d.clip)
    val_v = (
        training_phantoms(d.val_phantoms, seed + 1_000_003, d.spacing, clip=d.clip) if d.val_phantoms else []
    )
    return train_v, val_v


def convert_labels(volumes: Volumes, lut: np.ndarray) -> Volumes:
    """Map label ids through a lookup table (pre-training on another class set)."""
    return [dataclasses.replace(c, labels=lut.astype(np.uint8)[c.labels]) for c in volumes]


def patch_datasets(
    cfg: RunConfig,
    train_v: Volumes,
    val_v: Volumes,
    intensity: dict[str, Any],
    world_size: int = 1,
    patch: Sequence[int] | None = None,
) -> tuple[PatchDataset, PatchDataset | None]:
    """The training patches (oversampled, augmented as the config says) and the fixed validation patches."""
    d, patch = cfg.data, tuple(patch or cfg.model.patch_size)
    sampling = Sampling(lesion_fraction=d.lesion_fraction, foreground_fraction=d.foreground_fraction)
    length = cfg.iters_per_epoch * cfg.train.batch_size * world_size
    train_ds = PatchDataset(
        train_v,
        patch,
        intensity=intensity,
        samples_per_epoch=length,
        seed=cfg.train.seed,
        sampling=sampling,
        augment=Augment() if d.augment else None,
    )
    val_ds = None
    if val_v:
        val_ds = PatchDataset(
            val_v,
            patch,
            intensity=intensity,
            samples_per_epoch=d.val_patches,
            seed=cfg.train.seed + 1,
            sampling=sampling,
            augment=None,
        )
    return train_ds, val_ds


def run(
    cfg: RunConfig,
    classes: list[str],
    train_v: Volumes,
    val_v: Volumes,
    out_dir: Path,
    info: DistInfo,
    provenance: dict[str, Any],
    init: Path | None = None,
    resume: Path | None = None,
) -> list[dict[str, Any]]:
    """Build the model (optionally from pre-trained weights with a new head) and train it."""
    if len(classes) != cfg.model.num_classes:
        raise ValueError(f"{len(classes)} class names for a model with {cfg.model.num_classes} classes")
    seed_everything(cfg.train.seed)
    model = build_model(cfg.model)
    if init is not None and resume is None:
        ck = load_checkpoint(init)
        loaded, skipped = load_pretrained(model, ck.state_dict)
        log.info(
            "initialised from %s: %d tensors loaded, %d re-initialised (%s...)",
            init,
            len(loaded),
            len(skipped),
            skipped[:3],
        )
    intensity = {"clip": list(cfg.data.clip), "mean": cfg.data.mean, "std": cfg.data.std}
    train_ds, val_ds = patch_datasets(cfg, train_v, val_v, intensity, info.world_size)
    provenance = {**provenance, "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if resume is not None:  # keep the record of the run this one continues
        provenance["continues"] = load_checkpoint(resume).meta.get("train", {})
    meta = meta_for(cfg, classes, provenance)
    return train(model, cfg.model, train_ds, val_ds, cfg.train, meta, out_dir, info, resume=resume)


def export_shipped(run_dir: Path, dest: Path, history: list[dict[str, Any]]) -> Path:
    """Write best.pt without the resume state (the inference checkpoint), history in META train."""
    ck = load_checkpoint(run_dir / "best.pt")
    model = ck.build()
    meta = dict(ck.meta)
    meta["train"] = {
        **meta["train"],
        "history": [{k: v for k, v in h.items() if k != "seconds"} for h in history],
    }
    return save_checkpoint(dest, model, ck.config, meta)


CLASSES = list(CLASS_NAMES)
