"""MONAI backbones (U-Net, SegResNet, Swin UNETR) behind the segmenter interface."""

from __future__ import annotations

import torch
from monai.networks.nets import SegResNet, SwinUNETR, UNet
from torch import nn

from .config import ModelConfig


class MonaiSegmenter(nn.Module):
    """forward -> softmax probabilities; forward_train -> {"logits"}; `head` is the last conv layer."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        k = cfg.num_classes
        if cfg.arch == "monai_unet":
            ch = cfg.monai_channels
            self.net: nn.Module = UNet(
                spatial_dims=3,
                in_channels=cfg.in_channels,
                out_channels=k,
                channels=ch,
                strides=tuple([2] * (len(ch) - 1)),
                num_res_units=2,
                norm="instance",
            )
        elif cfg.arch == "segresnet":
            self.net = SegResNet(
                spatial_dims=3, in_channels=cfg.in_channels, out_channels=k, init_filters=cfg.init_filters
            )
        elif cfg.arch == "swinunetr":
            self.net = SwinUNETR(
                in_channels=cfg.in_channels, out_channels=k, feature_size=cfg.feature_size, spatial_dims=3
            )
        else:
            raise ValueError(f"{cfg.arch!r} is not a MONAI architecture")

    def forward_train(self, x: torch.Tensor) -> dict[str, object]:
        """Raw logits for the loss."""
        return {"logits": self.net(x)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities summing to 1 over the class axis."""
        return torch.softmax(self.net(x).float(), dim=1)
