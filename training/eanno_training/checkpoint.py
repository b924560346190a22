"""The checkpoint format "eanno-checkpoint/1" (CONTRACTS.md): save, load, resume state, shipped model."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from eanno_contracts.errors import EannoError
from eanno_contracts.meta import DEFAULT_CLIP, DEFAULT_STEP, DEFAULT_THETA, META_KEYS
from torch import nn

from .labelmap import CLASS_NAMES  # noqa: F401  (re-exported: META class names)
from .models import ModelConfig, build_model

FORMAT = "eanno-checkpoint/1"


class CheckpointError(EannoError, ValueError):
    """A checkpoint file that is missing, unreadable or not in the expected format."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: config, weights, META and (optionally) the training state for resume."""

    config: ModelConfig
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any]
    resume: dict[str, Any] = field(default_factory=dict)

    def build(self, device: str | torch.device = "cpu") -> nn.Module:
        """The network with these weights, in eval mode."""
        model = build_model(self.config)
        model.load_state_dict(self.state_dict)
        return model.to(device).eval()


def shipped_checkpoint_path() -> Path:
    """Where the shipped phantom-trained model lives inside the package."""
    return Path(str(resources.files("eanno_training") / "weights" / "small_phantom.pt"))


def make_meta(
    classes: list[str],
    spacing: tuple[float, float, float] | list[float],
    patch_size: tuple[int, ...] | list[int],
    mean: float,
    std: float,
    theta: float = DEFAULT_THETA,
    step: float = DEFAULT_STEP,
    clip: tuple[float, float] = DEFAULT_CLIP,
    train: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A META dict in the contract's shape (JSON-able)."""
    return {
        "classes": list(classes),
        "spacing": [float(s) for s in spacing],
        "patch_size": [int(p) for p in patch_size],
        "intensity": {"clip": [float(clip[0]), float(clip[1])], "mean": float(mean), "std": float(std)},
        "theta": float(theta),
        "step": float(step),
        "train": dict(train or {}),
    }


def validate_meta(meta: Any, where: str) -> dict[str, Any]:
    """Check META has every key with the right shape; the error names the file and key."""
    if not isinstance(meta, dict):
        raise CheckpointError(f"{where}: META is not a dict")
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise CheckpointError(f"{where}: META lacks {', '.join(missing)}")
    for key, n in (("spacing", 3), ("patch_size", 3)):
        if len(meta[key]) != n:
            raise CheckpointError(f"{where}: META {key} must have {n} values, got {meta[key]!r}")
    inten = meta["intensity"]
    if not {"clip", "mean", "std"} <= set(inten) or float(inten["std"]) <= 0:
        raise CheckpointError(f"{where}: META intensity needs clip, mean and a positive std, got {inten!r}")
    return meta


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    config: ModelConfig,
    meta: dict[str, Any],
    resume: dict[str, Any] | None = None,
) -> Path:
    """Write atomically (temporary name in the same folder, then rename); `resume` adds optimizer state etc."""
    path = Path(path)
    validate_meta(meta, str(path))
    module = model.module if hasattr(model, "module") else model  # unwrap DDP
    payload: dict[str, Any] = {
        "format": FORMAT,
        "model": {"arch": config.arch, **config.to_dict()},
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "meta": meta,
    }
    if resume:
        payload["resume"] = resume
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a checkpoint is meant to be shared and served
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_checkpoint(
    path: str | os.PathLike[str] | None = None, map_location: str | torch.device = "cpu"
) -> Checkpoint:
    """Read a checkpoint (None -> the shipped model); every problem is a CheckpointError naming the file."""
    path = Path(path) if path is not None else shipped_checkpoint_path()
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        # weights_only: a checkpoint is data; it must not be able to run code when loaded.
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for a corrupt or foreign file
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({e})") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        got = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path}: format is {got!r}, expected {FORMAT!r}")
    model_d = dict(payload["model"])
    try:
        config = ModelConfig.from_dict(model_d)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: bad model config ({e})") from e
    meta = validate_meta(payload.get("meta"), str(path))
    return Checkpoint(
        config=config, state_dict=payload["state_dict"], meta=meta, resume=payload.get("resume", {})
    )
