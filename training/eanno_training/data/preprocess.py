"""Resampling to the model spacing and intensity handling, with the conventions of CONTRACTS.md."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from eanno_contracts.geometry import target_shape
from eanno_contracts.meta import DEFAULT_CLIP

from .atlas import Case


@dataclass(frozen=True)
class Prepared:
    """A case at the model spacing: clipped HU (float32) and labels (uint8), canonical order, cached in memory;
    `affine` maps its voxels to world mm (the source case's world)."""

    name: str
    image: np.ndarray
    labels: np.ndarray | None
    spacing: tuple[float, float, float]
    meta: dict = field(default_factory=dict)
    affine: np.ndarray | None = None


def clip_hu(image: np.ndarray, clip: Sequence[float] = DEFAULT_CLIP) -> np.ndarray:
    """HU clipped to [clip0, clip1] as float32."""
    return np.clip(image.astype(np.float32, copy=False), clip[0], clip[1])


def resample_image(image: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Trilinear resampling with align_corners=True (= scipy.ndimage.zoom(order=1, grid_mode=False)); float32."""
    shape = tuple(int(n) for n in shape)
    if shape == image.shape:
        return image.astype(np.float32, copy=False)
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    return F.interpolate(x, size=shape, mode="trilinear", align_corners=True)[0, 0].numpy()


def resample_labels(labels: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Nearest-neighbour resampling on the same align_corners grid as the image (index i' -> round(i' (n-1)/(n'-1)))."""
    shape = tuple(int(n) for n in shape)
    if shape == labels.shape:
        return labels
    idx = [
        np.zeros(m, np.intp) if m == 1 else np.floor(np.arange(m) * ((n - 1) / (m - 1)) + 0.5).astype(np.intp)
        for n, m in zip(labels.shape, shape, strict=True)
    ]
    return labels[np.ix_(*idx)]


def normalise(image: np.ndarray, mean: float, std: float) -> np.ndarray:
    """(x - mean) / std as float32."""
    return (image.astype(np.float32, copy=False) - np.float32(mean)) / np.float32(std)


def prepare(case: Case, model_spacing: Sequence[float], clip: Sequence[float] = DEFAULT_CLIP) -> Prepared:
    """Clip, then resample image (trilinear) and labels (nearest) to the model spacing."""
    shape = target_shape(case.image.shape, case.spacing, model_spacing)
    image = resample_image(clip_hu(case.image, clip), shape)
    labels = None if case.labels is None else resample_labels(case.labels, shape)
    # align_corners=True: new voxel i' sits on old voxel i' (n - 1) / (m - 1); one voxel sits on old voxel 0
    factors = [(n - 1) / (m - 1) if m > 1 else float(n) for n, m in zip(case.image.shape, shape, strict=True)]
    affine = case.affine @ np.diag([*factors, 1.0])
    actual = tuple(float(s * f) for s, f in zip(case.spacing, factors, strict=True))
    return Prepared(case.name, image, labels, actual, dict(case.meta), affine)  # type: ignore[arg-type]


def intensity_stats(cases: Sequence[Prepared], clip: Sequence[float] = DEFAULT_CLIP) -> dict:
    """The META "intensity" entry: clip plus mean and std of the clipped HU over all voxels of the cases."""
    total = count = sq = 0.0
    for c in cases:
        x = c.image.astype(np.float64)
        total += x.sum()
        sq += np.square(x).sum()
        count += x.size
    if count == 0:
        raise ValueError("intensity_stats needs at least one non-empty case")
    mean = total / count
    std = float(np.sqrt(max(sq / count - mean * mean, 1e-12)))
    return {"clip": [float(clip[0]), float(clip[1])], "mean": float(mean), "std": std}
