"""Phantom patches held in memory at the model spacing: the shipped model's training data.

Each phantom is generated at its own native spacing in canonical (RAS) order and brought to the model
grid with the predictor's own preprocessing (clip, trilinear align_corners=True, normalise), so training
sees exactly what inference sees. Labels are resampled nearest-neighbour.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from eanno_contracts.geometry import target_shape
from eanno_contracts.labels import DUCT, LESION_CLASSES, PANCREAS
from torch.utils.data import Dataset

from .phantoms import generate_phantom, phantom_seeds

log = logging.getLogger(__name__)


def to_model_grid(
    ct: np.ndarray, labels: np.ndarray | None, spacing: Sequence[float], target: Sequence[float],
    clip: tuple[float, float], mean: float, std: float,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """CT (float32, normalised, (1, *grid)) and labels (int64, nearest) on the model grid."""
    shape = target_shape(ct.shape, spacing, target)
    x = torch.from_numpy(np.clip(ct.astype(np.float32), *clip))[None, None]
    if tuple(shape) != ct.shape:
        x = F.interpolate(x, size=shape, mode="trilinear", align_corners=True)
    x = ((x[0] - mean) / std).contiguous()
    y = None
    if labels is not None:
        yl = torch.from_numpy(labels.astype(np.int64))
        if tuple(shape) != labels.shape:
            # nearest on the align_corners=True grid: source index = round(i * (n - 1) / (n' - 1))
            idx = [torch.round(torch.linspace(0, n - 1, m)).long() for n, m in zip(labels.shape, shape, strict=True)]
            yl = yl[idx[0]][:, idx[1]][:, :, idx[2]]
        y = yl.contiguous()
    return x, y


def phantom_volumes(
    n: int, seed: int, spacing: Sequence[float], clip: tuple[float, float], mean: float, std: float,
    lesion_rich: bool = True, source_mm: tuple[float, float] | None = (0.6, 0.9),
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """n phantoms (RAS) on the model grid; lesion_rich: 1-3 lesions in 85% of cases.

    source_mm: each phantom is generated on an isotropic grid of (uniform in this range) x the model
    spacing and then resampled, which keeps partial-volume edges and interpolated noise like a real
    scan's while costing a fraction of a native-resolution phantom; None -> the drawn native spacing.
    """
    rng = np.random.default_rng(seed)
    out = []
    for s in phantom_seeds(seed, n):
        k = int(rng.integers(1, 4)) if (lesion_rich and rng.random() < 0.85) else None
        src = None if source_mm is None else tuple(float(rng.uniform(*source_mm)) * m for m in spacing)
        ph = generate_phantom(s, n_lesions=k, orientation="RAS", spacing=src)
        out.append(to_model_grid(ph.ct, ph.labels, ph.spacing, spacing, clip, mean, std))
    return out


class PatchDataset(Dataset):
    """Foreground-oversampled random patches; deterministic per (seed, index) so runs repeat."""

    def __init__(
        self, volumes: list[tuple[torch.Tensor, torch.Tensor]], patch: Sequence[int], length: int, seed: int,
        air: float, p_lesion: float = 0.4, p_pancreas: float = 0.35, augment: bool = True,
    ) -> None:
        lesions = torch.tensor(LESION_CLASSES)
        self.volumes, self.patch, self.length, self.seed = volumes, tuple(patch), length, seed
        self.air, self.p_lesion, self.p_pancreas, self.augment = air, p_lesion, p_pancreas, augment
        self.lesion_idx = [torch.nonzero(torch.isin(y, lesions)) for _, y in volumes]
        self.pancreas_idx = [torch.nonzero((y == PANCREAS) | (y == DUCT)) for _, y in volumes]
        self.epoch = 0

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """New patches each epoch (same sequence for the same seed)."""
        self.epoch = epoch

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, i])
        v = int(rng.integers(len(self.volumes)))
        x, y = self.volumes[v]
        u = rng.random()
        pool = self.lesion_idx[v] if u < self.p_lesion else self.pancreas_idx[v] if u < self.p_lesion + self.p_pancreas else None
        shape = np.array(y.shape)
        p = np.array(self.patch)
        if pool is not None and len(pool):
            centre = pool[int(rng.integers(len(pool)))].numpy() + rng.integers(-p // 4, p // 4 + 1)
        else:
            centre = rng.integers(0, shape)
        lo = centre - p // 2
        xp = torch.full((1, *self.patch), self.air, dtype=torch.float32)
        yp = torch.zeros(self.patch, dtype=torch.long)
        src = [slice(max(0, a), min(n, a + q)) for a, n, q in zip(lo, shape, p, strict=True)]
        dst = [slice(s.start - a, s.stop - a) for s, a in zip(src, lo, strict=True)]
        to, frm = (slice(None), *dst), (slice(None), *src)  # named: mypy misreads a starred subscript before 3.11
        xp[to] = x[frm]
        yp[tuple(dst)] = y[tuple(src)]
        if self.augment:
            # intensity jitter (scanner calibration / contrast timing) on the normalised image
            xp = xp * float(rng.uniform(0.9, 1.1)) + float(rng.uniform(-0.1, 0.1))
        return xp, yp
