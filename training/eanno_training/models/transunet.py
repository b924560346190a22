"""3D TransUNet: the nnU-Net CNN with a ViT bottleneck (encoder), a mask-classification decoder, or both."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .attention import EncoderLayer, QueryLayer
from .config import ModelConfig
from .unet import Decoder, Encoder, stage_widths


class ViTBottleneck(nn.Module):
    """Bottleneck voxels as tokens -> linear to the ViT width + learned positions -> layers -> back."""

    def __init__(self, cfg: ModelConfig, channels: int) -> None:
        super().__init__()
        grid = [p // 2**cfg.n_pool for p in cfg.patch_size]
        n_tokens = grid[0] * grid[1] * grid[2]
        self.proj_in = nn.Linear(channels, cfg.vit_width)
        self.pos = nn.Parameter(torch.zeros(1, n_tokens, cfg.vit_width))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.layers = nn.ModuleList(
            [EncoderLayer(cfg.vit_width, cfg.vit_heads, cfg.vit_mlp) for _ in range(cfg.vit_layers)]
        )
        self.norm = nn.LayerNorm(cfg.vit_width)
        self.proj_out = nn.Linear(cfg.vit_width, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, d, h, w) -> same shape, residual on the CNN bottleneck."""
        b, c, d, h, w = x.shape
        t = self.proj_in(x.flatten(2).transpose(1, 2)) + self.pos
        for layer in self.layers:
            t = layer(t)
        t = self.proj_out(self.norm(t)).transpose(1, 2).reshape(b, c, d, h, w)
        return x + t


class MaskDecoder(nn.Module):
    """Learned queries refined by masked cross-attention to decoder features at 1/8, 1/4, 1/2.

    `dec_layers` layers, each visiting the levels coarse to fine with its own cross-attention per level
    (2 layers at width 192 / FFN 1536 give the paper's ~33 M parameters with the nnU-Net CNN).

    Each query predicts class logits (num_classes + no-object) and a full-resolution mask logit map via
    a dot product with the per-voxel mask embedding. Masked attention: a query only attends to voxels
    its previous mask prediction covers (sigmoid >= 0.5), or everywhere when that mask is empty.
    """

    def __init__(self, cfg: ModelConfig, level_widths: list[int], mask_width: int) -> None:
        super().__init__()
        c = cfg.dec_width
        self.num_levels = len(level_widths)
        self.query_feat = nn.Parameter(torch.zeros(1, cfg.dec_queries, c))
        self.query_pos = nn.Parameter(torch.zeros(1, cfg.dec_queries, c))
        nn.init.normal_(self.query_feat, std=0.02)
        nn.init.normal_(self.query_pos, std=0.02)
        self.level_proj = nn.ModuleList([nn.Conv3d(w, c, 1) for w in level_widths])
        self.level_embed = nn.Parameter(torch.zeros(self.num_levels, c))
        self.layers = nn.ModuleList(
            [QueryLayer(c, cfg.dec_heads, cfg.dec_ffn, self.num_levels) for _ in range(cfg.dec_layers)]
        )
        self.norm = nn.LayerNorm(c)
        self.class_head = nn.Linear(c, cfg.num_classes + 1)
        self.mask_head = nn.Sequential(
            nn.Linear(c, c), nn.ReLU(), nn.Linear(c, c), nn.ReLU(), nn.Linear(c, cfg.mask_dim)
        )
        self.mask_proj = nn.Conv3d(mask_width, cfg.mask_dim, 1)

    def _predict(
        self, q: torch.Tensor, mask_feat: torch.Tensor, next_shape: tuple[int, ...] | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Class logits (B, Q, K+1), mask logits (B, Q, D, H, W), attention block for the next level."""
        qn = self.norm(q)
        cls = self.class_head(qn)
        masks = torch.einsum("bqc,bcdhw->bqdhw", self.mask_head(qn), mask_feat)
        block = None
        if next_shape is not None:
            small = nn.functional.interpolate(masks, size=next_shape, mode="trilinear", align_corners=False)
            block = (small.sigmoid() < 0.5).flatten(2).detach()
            empty = block.all(dim=-1, keepdim=True)
            block = block & ~empty
        return cls, masks, block

    def forward(
        self, levels: list[torch.Tensor], mask_source: torch.Tensor
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Predictions after every layer (first one from the bare queries); the last is the output."""
        b = mask_source.shape[0]
        mask_feat = self.mask_proj(mask_source)
        mems = [
            (proj(f).flatten(2).transpose(1, 2) + self.level_embed[i])
            for i, (proj, f) in enumerate(zip(self.level_proj, levels, strict=True))
        ]
        shapes = [tuple(f.shape[2:]) for f in levels]
        q = self.query_feat.expand(b, -1, -1)
        pos = self.query_pos.expand(b, -1, -1)
        cls, masks, block = self._predict(q, mask_feat, shapes[0])
        outs = [(cls, masks)]
        for i, layer in enumerate(self.layers):
            for lvl in range(self.num_levels):
                q = layer.cross_step(lvl, q, pos, mems[lvl], block)
                if lvl + 1 < self.num_levels:  # refresh the attention mask for the next, finer level
                    _, _, block = self._predict(q, mask_feat, shapes[lvl + 1])
            q = layer.tail(q, pos)
            last = i + 1 == len(self.layers)
            cls, masks, block = self._predict(q, mask_feat, None if last else shapes[0])
            outs.append((cls, masks))
        return outs


def semantic_probs(cls: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """softmax(class logits) without no-object x sigmoid(masks), summed over queries, normalised over classes."""
    p = torch.softmax(cls.float(), dim=-1)[..., :-1]
    sem = torch.einsum("bqk,bqdhw->bkdhw", p, masks.float().sigmoid())
    return sem / sem.sum(dim=1, keepdim=True).clamp_min(1e-6)


class TransUNet3D(nn.Module):
    """The segmenter: forward(image) -> per-voxel class probabilities (B, K, *patch)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        widths = stage_widths(cfg)
        self.encoder = Encoder(cfg)
        self.vit = ViTBottleneck(cfg, widths[-1]) if cfg.variant in ("encoder", "both") else None
        self.decoder = Decoder(cfg)
        self.mask_decoder: MaskDecoder | None = None
        if cfg.variant in ("decoder", "both"):
            # Decoder outputs run coarse to fine: index n_pool - 1 - s is at 1/2**s.
            level_widths = [widths[s] for s in range(cfg.dec_levels, 0, -1)]
            self.mask_decoder = MaskDecoder(cfg, level_widths, widths[0])
            self.head: nn.Module | None = None
        else:
            self.head = nn.Conv3d(widths[0], cfg.num_classes, 1)

    def forward_train(self, x: torch.Tensor) -> dict[str, Any]:
        """Raw outputs for the loss: {"logits"} for the plain head, {"layers": [(cls, masks), ...]} otherwise."""
        if self.cfg.input_window is not None:
            lo, hi = self.cfg.input_window
            x = torch.cat([x, (2 * x.clamp(lo, hi) - (lo + hi)) / (hi - lo)], dim=1)
        feats = self.encoder(x)
        if self.vit is not None:
            feats = feats[:-1] + [self.vit(feats[-1])]
        dec = self.decoder(feats)
        if self.mask_decoder is None:
            assert self.head is not None  # built whenever the mask decoder is not
            return {"logits": self.head(dec[-1])}
        n = self.cfg.n_pool
        levels = [dec[n - 1 - s] for s in range(self.cfg.dec_levels, 0, -1)]
        return {"layers": self.mask_decoder(levels, dec[-1])}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities summing to 1 over the class axis."""
        out = self.forward_train(x)
        if "logits" in out:
            return torch.softmax(out["logits"].float(), dim=1)
        cls, masks = out["layers"][-1]
        return semantic_probs(cls, masks)
