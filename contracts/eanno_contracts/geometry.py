"""The sliding window's geometry (CONTRACTS.md "Sliding window"): model-grid shape, padding, tile starts, weights.

The torch predictor (eanno_training), the served numpy window (eanno_serving) and the tests' torch
reference all take these from here, so the three can differ only in resampling and arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def target_shape(
    shape: Sequence[int], spacing: Sequence[float], model_spacing: Sequence[float]
) -> tuple[int, int, int]:
    """Step 2: the model-grid shape, n' = max(1, round(n * s / m)) per axis (Python's round: ties to even)."""
    if not len(shape) == len(spacing) == len(model_spacing) == 3:
        raise ValueError(
            f"target_shape needs 3 sizes and 2 x 3 spacings, got {shape}, {spacing}, {model_spacing}"
        )
    a, b, c = (max(1, int(round(n * s / m))) for n, s, m in zip(shape, spacing, model_spacing, strict=True))
    return a, b, c


def pad_widths(shape: Sequence[int], patch: Sequence[int]) -> list[tuple[int, int]]:
    """Step 4: (before, after) per axis so every axis is at least the patch; the odd voxel goes after."""
    pads = [max(p - n, 0) for n, p in zip(shape, patch, strict=True)]
    return [(d // 2, d - d // 2) for d in pads]


def tile_starts(n: int, p: int, step: float) -> list[int]:
    """Step 5: n == p -> [0]; else k = ceil((n - p) / (step * p)) + 1 starts = round(linspace(0, n - p, k))."""
    if n < p:
        raise ValueError(f"axis of {n} voxels is shorter than the patch ({p}); pad first")
    if not 0 < step <= 1:
        raise ValueError(f"step must be in (0, 1], got {step}")
    if n == p:
        return [0]
    k = math.ceil((n - p) / (step * p)) + 1
    return [int(v) for v in np.round(np.linspace(0, n - p, k))]


def gaussian_weights(patch: Sequence[int]) -> np.ndarray:
    """Step 6: float32 Gaussian over the patch (sigma = p/8, centre (p-1)/2), max 1, zeros -> smallest non-zero."""
    axes = []
    for p in patch:
        i = np.arange(p, dtype=np.float64)
        axes.append(np.exp(-((i - (p - 1) / 2) ** 2) / (2 * (p / 8) ** 2)))
    w = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    w = w / w.max()
    w[w == 0] = w[w > 0].min()  # a weight of 0 would leave a voxel covered only by patch edges undefined
    return w.astype(np.float32)
