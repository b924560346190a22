"""In-process sliding-window inference: EXACTLY the algorithm of CONTRACTS.md ("Sliding window").

This is the reference the served (Triton) path must reproduce, so every step is numbered as there; the
geometry (target shape, padding, tile starts, weights) is eanno_contracts', shared with the served window.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from eanno_contracts.geometry import gaussian_weights, pad_widths, target_shape, tile_starts
from eanno_contracts.meta import DEFAULT_STEP
from torch import nn


def _resize(x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Trilinear, align_corners=True, on a (C, *spatial) tensor; skipped when the shape already matches."""
    if tuple(x.shape[1:]) == tuple(shape):
        return x
    return F.interpolate(x[None], size=tuple(shape), mode="trilinear", align_corners=True)[0]


class Predictor:
    """Sliding-window prediction with one network and its META; returns probs on the input grid."""

    def __init__(
        self,
        model: nn.Module,
        meta: dict[str, Any],
        *,
        step: float | None = None,
        batch_size: int = 2,
        device: str | torch.device | None = None,
        fp16: bool | None = None,
    ) -> None:
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device).eval()
        self.meta = meta
        self.patch = tuple(int(p) for p in meta["patch_size"])
        self.spacing = tuple(float(s) for s in meta["spacing"])
        self.step = float(step if step is not None else meta.get("step", DEFAULT_STEP))
        if not 0 < self.step <= 1:
            raise ValueError(f"step must be in (0, 1], got {self.step}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        # fp16 autocast only where it pays: on a CUDA device (CPU half matmuls are slow and lossy).
        self.fp16 = (self.device.type == "cuda") if fp16 is None else fp16
        inten = meta["intensity"]
        self.clip = (float(inten["clip"][0]), float(inten["clip"][1]))
        self.mean, self.std = float(inten["mean"]), float(inten["std"])
        self.weight = torch.from_numpy(gaussian_weights(self.patch)).to(self.device)

    def preprocess(self, volume: np.ndarray, spacing: Sequence[float]) -> torch.Tensor:
        """Steps 1-3: clip, resample to the model spacing, normalise -> (1, *model grid) float32."""
        x = torch.from_numpy(np.clip(np.asarray(volume, dtype=np.float32), *self.clip))[None].to(self.device)
        x = _resize(x, target_shape(volume.shape, spacing, self.spacing))
        return (x - self.mean) / self.std

    def forward_patches(self, patches: torch.Tensor) -> torch.Tensor:
        """The network on a batch (B, 1, *patch) -> float32 probs (B, K, *patch)."""
        ctx = (
            torch.autocast("cuda", dtype=torch.float16)
            if self.fp16 and self.device.type == "cuda"
            else nullcontext()
        )
        with torch.inference_mode(), ctx:
            return self.model(patches).float()

    def window(self, x: torch.Tensor) -> torch.Tensor:
        """Steps 4-7 up to the crop: pad, tile, Gaussian-weighted stitching -> (K, *model grid)."""
        n = x.shape[1:]
        pads = pad_widths(n, self.patch)
        before = [b for b, _ in pads]
        air = (self.clip[0] - self.mean) / self.std
        pad_arg = [w for pair in reversed(pads) for w in pair]  # F.pad lists the last axis first
        xp = F.pad(x, pad_arg, value=air) if any(pad_arg) else x
        padded = xp.shape[1:]
        starts = [tile_starts(s, p, self.step) for s, p in zip(padded, self.patch, strict=True)]
        corners = [(a, b, c) for a in starts[0] for b in starts[1] for c in starts[2]]
        acc: torch.Tensor | None = None
        wsum = torch.zeros(padded, dtype=torch.float32, device=self.device)
        p0, p1, p2 = self.patch
        for i in range(0, len(corners), self.batch_size):
            chunk = corners[i : i + self.batch_size]
            batch = torch.stack([xp[:, a : a + p0, b : b + p1, c : c + p2] for a, b, c in chunk])
            probs = self.forward_patches(batch)
            if acc is None:
                acc = torch.zeros((probs.shape[1], *padded), dtype=torch.float32, device=self.device)
            for (a, b, c), pr in zip(chunk, probs, strict=True):
                acc[:, a : a + p0, b : b + p1, c : c + p2] += pr * self.weight
                wsum[a : a + p0, b : b + p1, c : c + p2] += self.weight
        assert acc is not None
        out = acc / wsum
        return out[
            :, before[0] : before[0] + n[0], before[1] : before[1] + n[1], before[2] : before[2] + n[2]
        ]

    def predict(self, volume: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
        """Steps 1-8: HU volume (canonical order) + its spacing -> float32 probs (K, *volume.shape)."""
        if volume.ndim != 3:
            raise ValueError(f"volume must be 3D, got shape {volume.shape}")
        if len(spacing) != 3 or any(float(s) <= 0 for s in spacing):
            raise ValueError(f"spacing must be 3 positive numbers, got {spacing!r}")
        probs = self.window(self.preprocess(volume, spacing))
        probs = _resize(probs, volume.shape)
        return probs.cpu().numpy().astype(np.float32, copy=False)
