"""Segmenters: build_model(config) -> nn.Module with forward(image) -> probs and forward_train(image)."""

from __future__ import annotations

from torch import nn

from .config import ModelConfig, full_config, small_config, tiny_config
from .transunet import TransUNet3D, semantic_probs


def build_model(cfg: ModelConfig) -> nn.Module:
    """The network a configuration describes (no registry: a plain dispatch on cfg.arch)."""
    if cfg.arch == "transunet":
        return TransUNet3D(cfg)
    from .monai_nets import MonaiSegmenter  # MONAI import is slow; only when asked for

    return MonaiSegmenter(cfg)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameter count."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = [
    "ModelConfig",
    "TransUNet3D",
    "build_model",
    "count_parameters",
    "full_config",
    "semantic_probs",
    "small_config",
    "tiny_config",
]
