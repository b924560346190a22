"""One run configuration (model + data + training) read from a YAML file and overridden from the CLI."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from eanno_contracts.errors import EannoError
from eanno_contracts.meta import DEFAULT_CLIP, DEFAULT_STEP, DEFAULT_THETA

from .models import ModelConfig
from .train import TrainConfig


class SettingsError(EannoError, ValueError):
    """A configuration file or override that cannot be used; the message names the file and key."""


@dataclass(frozen=True)
class DataConfig:
    """Model grid and intensity normalisation (these go into the checkpoint's META)."""

    spacing: tuple[float, float, float] = (2.0, 2.0, 2.0)
    clip: tuple[float, float] = DEFAULT_CLIP
    mean: float = 50.0
    std: float = 200.0
    val_phantoms: int = 6
    val_patches: int = 24
    # Patch sampling and augmentation (eanno_training.data.PatchDataset, the one patch pipeline).
    lesion_fraction: float = 0.4
    foreground_fraction: float = 0.35
    augment: bool = True


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run needs besides its data."""

    model: ModelConfig
    data: DataConfig
    train: TrainConfig
    iters_per_epoch: int = 40
    theta: float = DEFAULT_THETA
    step: float = DEFAULT_STEP


def packaged_config(name: str) -> Path:
    """Path of a packaged config (configs/<name>.yaml)."""
    return Path(str(resources.files("eanno_training") / "configs" / f"{name}.yaml"))


def _section(cls: type, d: dict[str, Any], where: str) -> Any:
    known = {f.name for f in fields(cls)}
    bad = sorted(set(d) - known)
    if bad:
        raise SettingsError(f"{where}: unknown key(s) {', '.join(bad)}; known: {', '.join(sorted(known))}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def load_run_config(path: str | Path | None = None) -> RunConfig:
    """Read a run config YAML (None or a packaged name such as "small_phantom")."""
    p = (
        packaged_config("small_phantom" if path is None else str(path))
        if path is None or not str(path).endswith((".yaml", ".yml"))
        else Path(path)
    )
    if not p.is_file():
        raise SettingsError(f"{p}: config file not found")
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise SettingsError(f"{p}: not valid YAML ({e})") from e
    bad = sorted(set(raw) - {"model", "data", "train", "theta", "step"})
    if bad:
        raise SettingsError(f"{p}: unknown top-level key(s) {', '.join(bad)}")
    train_d = dict(raw.get("train", {}))
    iters = int(train_d.pop("iters_per_epoch", 40))
    try:
        model = ModelConfig.from_dict(dict(raw.get("model", {})))
        return RunConfig(
            model=model,
            data=_section(DataConfig, dict(raw.get("data", {})), f"{p} [data]"),
            train=_section(TrainConfig, train_d, f"{p} [train]"),
            iters_per_epoch=iters,
            theta=float(raw.get("theta", DEFAULT_THETA)),
            step=float(raw.get("step", DEFAULT_STEP)),
        )
    except (TypeError, ValueError) as e:
        raise SettingsError(f"{p}: {e}") from e


def override(cfg: RunConfig, **changes: Any) -> RunConfig:
    """Apply CLI overrides (None = keep); keys: epochs, batch_size, lr, seed, iters_per_epoch, num_classes."""
    changes = {k: v for k, v in changes.items() if v is not None}
    train_keys = {f.name for f in fields(TrainConfig)}
    t = replace(cfg.train, **{k: v for k, v in changes.items() if k in train_keys})
    m = cfg.model.replace(num_classes=changes["num_classes"]) if "num_classes" in changes else cfg.model
    top = {k: v for k, v in changes.items() if k in ("iters_per_epoch", "theta", "step")}
    return replace(cfg, train=t, model=m, **top)
