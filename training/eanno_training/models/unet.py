"""The nnU-Net style 3D CNN: encoder and decoder stages (DESIGN.md "The model")."""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig


def stage_widths(cfg: ModelConfig) -> list[int]:
    """Feature widths per resolution stage: base doubling up to the cap, n_pool + 1 stages."""
    return [min(cfg.base_features * 2**s, cfg.max_features) for s in range(cfg.n_pool + 1)]


class ConvBlock(nn.Sequential):
    """conv3x3x3 -> InstanceNorm(affine) -> LeakyReLU(0.01), the nnU-Net unit."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv3d(c_in, c_out, 3, stride=stride, padding=1, bias=True),
            nn.InstanceNorm3d(c_out, eps=1e-5, affine=True),
            nn.LeakyReLU(0.01, inplace=True),
        )


class Stage(nn.Sequential):
    """`n` conv blocks, the first one optionally strided (the downsampling)."""

    def __init__(self, c_in: int, c_out: int, n: int, stride: int = 1) -> None:
        blocks = [ConvBlock(c_in, c_out, stride)] + [ConvBlock(c_out, c_out) for _ in range(n - 1)]
        super().__init__(*blocks)


class Encoder(nn.Module):
    """Returns the skip features of every stage, finest first, bottleneck last."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = stage_widths(cfg)
        self.widths = w
        c_in = cfg.in_channels * (2 if cfg.input_window is not None else 1)
        self.stages = nn.ModuleList(
            [Stage(c_in, w[0], cfg.convs_per_stage)]
            + [Stage(w[s - 1], w[s], cfg.convs_per_stage, stride=2) for s in range(1, len(w))]
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Skip features, index 0 = full resolution."""
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class Decoder(nn.Module):
    """Transposed-conv up, concatenate the skip, two conv blocks; returns every decoder level."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = stage_widths(cfg)
        self.ups = nn.ModuleList()
        self.stages = nn.ModuleList()
        for s in range(len(w) - 2, -1, -1):
            self.ups.append(nn.ConvTranspose3d(w[s + 1], w[s], 2, stride=2, bias=False))
            self.stages.append(Stage(2 * w[s], w[s], cfg.convs_per_stage))

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """Decoder features coarse to fine; the last one is at full resolution."""
        x = feats[-1]
        outs = []
        for i, (up, stage) in enumerate(zip(self.ups, self.stages, strict=True)):
            skip = feats[-2 - i]
            x = stage(torch.cat([up(x), skip], dim=1))
            outs.append(x)
        return outs
