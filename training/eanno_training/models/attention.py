"""Transformer blocks written with plain matmuls so the legacy ONNX exporter (opset 18) traces them.

Hand-written rather than nn.MultiheadAttention / nn.TransformerEncoderLayer: those switch to fused
native kernels in eval mode (no ONNX symbolic in the legacy exporter), and masked cross-attention needs
a per-query boolean mask that is simplest to apply on the raw scores.
"""

from __future__ import annotations

import torch
from torch import nn


class Attention(nn.Module):
    """Multi-head attention; `block` (B, Lq, Lk) True = may not attend."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.k = nn.Linear(width, width)
        self.v = nn.Linear(width, width)
        self.out = nn.Linear(width, width)

    def forward(self, q: torch.Tensor, kv: torch.Tensor, block: torch.Tensor | None = None) -> torch.Tensor:
        """q (B, Lq, C), kv (B, Lk, C) -> (B, Lq, C)."""
        b, lq, c = q.shape
        lk = kv.shape[1]
        h = self.heads
        d = c // h
        qh = self.q(q).reshape(b, lq, h, d).transpose(1, 2)
        kh = self.k(kv).reshape(b, lk, h, d).transpose(1, 2)
        vh = self.v(kv).reshape(b, lk, h, d).transpose(1, 2)
        scores = torch.matmul(qh, kh.transpose(-1, -2)) * (d**-0.5)
        if block is not None:
            scores = scores.masked_fill(block.unsqueeze(1), float("-inf"))
        attn = torch.softmax(scores.float(), dim=-1).to(vh.dtype)
        out = torch.matmul(attn, vh).transpose(1, 2).reshape(b, lq, c)
        return self.out(out)


class FFN(nn.Sequential):
    """Linear -> GELU -> Linear."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))


class EncoderLayer(nn.Module):
    """Pre-norm ViT layer: x + MSA(LN x); x + MLP(LN x)."""

    def __init__(self, width: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = FFN(width, mlp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, C) -> (B, L, C)."""
        y = self.norm1(x)
        x = x + self.attn(y, y)
        return x + self.mlp(self.norm2(x))


class QueryLayer(nn.Module):
    """One decoder layer: masked cross-attention to each feature level in turn (coarse to fine), then
    self-attention and FFN (Mask2Former's post-norm order). Weights are separate per level."""

    def __init__(self, width: int, heads: int, ffn: int, levels: int) -> None:
        super().__init__()
        self.cross = nn.ModuleList([Attention(width, heads) for _ in range(levels)])
        self.cross_norm = nn.ModuleList([nn.LayerNorm(width) for _ in range(levels)])
        self.self_attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.ffn = FFN(width, ffn)
        self.norm3 = nn.LayerNorm(width)

    def cross_step(
        self, level: int, q: torch.Tensor, q_pos: torch.Tensor, mem: torch.Tensor, block: torch.Tensor | None
    ) -> torch.Tensor:
        """q (B, Q, C) attends to mem (B, L, C) of one level where `block` allows."""
        return self.cross_norm[level](q + self.cross[level](q + q_pos, mem, block))

    def tail(self, q: torch.Tensor, q_pos: torch.Tensor) -> torch.Tensor:
        """Self-attention among the queries, then the FFN."""
        qp = q + q_pos
        q = self.norm2(q + self.self_attn(qp, qp))
        return self.norm3(q + self.ffn(q))
