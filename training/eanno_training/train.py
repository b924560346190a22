"""The training loop: mixed precision on GPU, DDP under torchrun, per-epoch validation Dice, resume."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

from .checkpoint import load_checkpoint, save_checkpoint
from .distributed import DistInfo, all_reduce_sum
from .losses import segmentation_loss
from .models import ModelConfig

log = logging.getLogger(__name__)

# Parameters that depend on the class count: re-initialised when fine-tuning on a new class set.
HEAD_PREFIXES = ("head.", "mask_decoder.class_head.", "net.out.", "net.conv_final.")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (the model's are in ModelConfig)."""

    epochs: int = 10
    batch_size: int = 2
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    amp: bool = True  # only takes effect on CUDA
    grad_clip: float = 12.0
    # Cross-entropy weight per class (None = equal). Lesion voxels are about 1 % of even a lesion-centred
    # patch; weighting them lifts the lesion classes' probabilities and separates the three lesion types.
    class_weights: tuple[float, ...] | None = None
    num_workers: int = 0
    progress: bool = True


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_pretrained(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    """Copy every pre-trained tensor whose name and shape match, except the class head; -> (loaded, skipped)."""
    own = model.state_dict()
    loaded, skipped = [], []
    for k, v in state_dict.items():
        if k.startswith(HEAD_PREFIXES) or k not in own or own[k].shape != v.shape:
            skipped.append(k)
            continue
        own[k] = v
        loaded.append(k)
    model.load_state_dict(own)
    return loaded, skipped


def dice_counts(probs: torch.Tensor, target: torch.Tensor, k: int) -> torch.Tensor:
    """(3, K): intersection, predicted and true voxel counts per class of the argmax."""
    pred = probs.argmax(1)
    out = torch.zeros(3, k, dtype=torch.float64, device=probs.device)
    for c in range(k):
        p, t = pred == c, target == c
        out[0, c] += (p & t).sum()
        out[1, c] += p.sum()
        out[2, c] += t.sum()
    return out


def validate(model: nn.Module, loader: DataLoader, k: int, info: DistInfo) -> list[float | None]:
    """Dice per class over the validation patches (None where a class is absent in truth and prediction)."""
    model.eval()
    counts = torch.zeros(3, k, dtype=torch.float64, device=info.device)
    with torch.inference_mode():
        for batch in loader:
            probs = model(batch["image"].to(info.device))
            counts += dice_counts(probs, batch["label"].to(info.device), k)
    counts = all_reduce_sum(counts, info)
    model.train()
    denom = counts[1] + counts[2]
    return [
        None if d == 0 else float(2 * i / d) for i, d in zip(counts[0].tolist(), denom.tolist(), strict=True)
    ]


def _loader(ds: Dataset, tcfg: TrainConfig, info: DistInfo, shuffle: bool) -> DataLoader:
    sampler = (
        DistributedSampler(ds, num_replicas=info.world_size, rank=info.rank, shuffle=shuffle, seed=tcfg.seed)
        if info.enabled
        else None
    )
    g = torch.Generator()
    g.manual_seed(tcfg.seed)
    return DataLoader(
        ds,
        batch_size=tcfg.batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=tcfg.num_workers,
        generator=g,
        drop_last=False,
    )


class _TrainForward(nn.Module):
    """forward() = the wrapped model's forward_train (the raw outputs the loss needs)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> dict[str, object]:
        return self.model.forward_train(x)  # type: ignore[operator]


def train(
    model: nn.Module,
    mcfg: ModelConfig,
    train_ds: Dataset,
    val_ds: Dataset | None,
    tcfg: TrainConfig,
    meta: dict[str, Any],
    out_dir: Path,
    info: DistInfo,
    resume: Path | None = None,
) -> list[dict[str, Any]]:
    """Train; writes out_dir/last.pt every epoch (with resume state) and best.pt; -> per-epoch history."""
    out_dir = Path(out_dir)
    model = model.to(info.device)
    # DDP synchronises the gradients of whatever its wrapped module's forward() runs: wrap forward_train.
    runner: nn.Module = _TrainForward(model)
    if info.enabled:
        runner = nn.parallel.DistributedDataParallel(
            runner,
            device_ids=[info.device.index] if info.device.type == "cuda" else None,
            find_unused_parameters=True,
        )
    opt = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)

    def poly(epoch: int) -> float:
        return max(0.0, 1 - epoch / max(1, tcfg.epochs)) ** 0.9

    sched = torch.optim.lr_scheduler.LambdaLR(opt, poly)
    use_amp = tcfg.amp and info.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start, history, best = 0, [], -1.0
    if resume is not None:
        ck = load_checkpoint(resume, map_location=info.device)
        model.load_state_dict(ck.state_dict)
        state = ck.resume
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        # The saved LR is the saved run's schedule: 0 after its last epoch when this run goes on for more
        # epochs (make train-shipped does). Put it where this run's schedule has it now.
        for group, base in zip(opt.param_groups, sched.base_lrs, strict=True):
            group["lr"] = base * poly(sched.last_epoch)
        if use_amp and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start, history, best = int(state["epoch"]) + 1, list(state["history"]), float(state.get("best", -1.0))
        log.info("resumed from %s at epoch %d", resume, start)
    weights = None
    if tcfg.class_weights is not None:
        if len(tcfg.class_weights) != mcfg.num_classes:
            raise ValueError(
                f"train.class_weights has {len(tcfg.class_weights)} values for {mcfg.num_classes} classes"
            )
        weights = torch.tensor(tcfg.class_weights, dtype=torch.float32, device=info.device)
    train_loader = _loader(train_ds, tcfg, info, shuffle=True)
    val_loader = _loader(val_ds, tcfg, info, shuffle=False) if val_ds is not None else None
    model.train()
    for epoch in range(start, tcfg.epochs):
        if isinstance(train_loader.sampler, DistributedSampler):
            train_loader.sampler.set_epoch(epoch)
        if hasattr(train_ds, "set_epoch"):
            train_ds.set_epoch(epoch)  # fresh random patches each epoch, repeatable from the seed
        t0, total, n = time.time(), 0.0, 0
        bar = tqdm(
            train_loader,
            desc=f"epoch {epoch + 1}/{tcfg.epochs}",
            disable=not (tcfg.progress and info.is_main),
            leave=False,
        )
        for batch in bar:  # eanno_training.data.PatchDataset items
            image, label = batch["image"].to(info.device), batch["label"].to(info.device)
            with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
                out = runner(image)
                loss = segmentation_loss(out, label, mcfg.num_classes, weights)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
            scaler.step(opt)
            scaler.update()
            total += float(loss.detach())
            n += 1
            bar.set_postfix(loss=f"{total / n:.4f}")
        sched.step()
        loss_sum = all_reduce_sum(torch.tensor([total, n], dtype=torch.float64, device=info.device), info)
        record: dict[str, Any] = {
            "epoch": epoch,
            "loss": float(loss_sum[0] / max(1, loss_sum[1])),
            "seconds": round(time.time() - t0, 2),
        }
        if val_loader is not None:
            dice = validate(model, val_loader, mcfg.num_classes, info)
            record["val_dice"] = dice
            fg = [d for d in dice[1:] if d is not None]
            record["val_mean_dice"] = float(np.mean(fg)) if fg else 0.0
        history.append(record)
        if info.is_main:
            log.info("epoch %d: %s", epoch + 1, record)
            resume_state = {
                "epoch": epoch,
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "scaler": scaler.state_dict() if use_amp else {},
                "history": history,
                "best": best,
                "train_config": asdict(tcfg),
            }
            save_checkpoint(out_dir / "last.pt", model, mcfg, meta, resume=resume_state)
            score = record.get("val_mean_dice", -record["loss"])
            if score > best:
                best = score
                save_checkpoint(out_dir / "best.pt", model, mcfg, meta)
    return history
