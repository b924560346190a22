"""A torch Dataset of training patches: foreground oversampling and MONAI augmentation (no flips)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from monai.transforms import (
    Compose,
    RandAffined,
    RandGaussianNoised,
    RandScaleIntensityd,
    RandShiftIntensityd,
)
from torch.utils.data import Dataset

from .labels import LESION_LABELS
from .preprocess import Prepared


@dataclass(frozen=True)
class Sampling:
    """Where patch centres fall: a fraction on a random lesion voxel, a fraction on any foreground voxel,
    the rest anywhere. Cases without lesions fall through to foreground, then anywhere."""

    lesion_fraction: float = 0.4
    foreground_fraction: float = 0.3
    lesion_labels: tuple[int, ...] = LESION_LABELS

    def __post_init__(self) -> None:
        if min(self.lesion_fraction, self.foreground_fraction) < 0 or self.lesion_fraction + self.foreground_fraction > 1:
            raise ValueError(f"fractions must be >= 0 and sum to <= 1, got {self.lesion_fraction}, {self.foreground_fraction}")


@dataclass(frozen=True)
class Augment:
    """Augmentation safe for anatomy-aware models: small rotations and scaling, intensity shift/scale, noise.
    Intensity values are in normalised units. Left-right flips are deliberately absent (they swap head/tail)."""

    spatial_prob: float = 0.5
    rotate_deg: float = 12.0
    scale: float = 0.12
    shift: float = 0.1
    intensity_scale: float = 0.1
    intensity_prob: float = 0.5
    noise_std: float = 0.05
    noise_prob: float = 0.3


class PatchDataset(Dataset):
    """`samples_per_epoch` patches drawn from in-memory prepared cases; item i of epoch e is deterministic."""

    def __init__(
        self,
        cases: Sequence[Prepared],
        patch_size: Sequence[int],
        *,
        intensity: dict,
        samples_per_epoch: int,
        seed: int = 0,
        sampling: Sampling | None = None,
        augment: Augment | None = Augment(),
    ) -> None:
        if not cases:
            raise ValueError("PatchDataset needs at least one case")
        if any(c.labels is None for c in cases):
            raise ValueError("every training case needs labels: " + ", ".join(c.name for c in cases if c.labels is None))
        self.cases = list(cases)
        self.patch = tuple(int(p) for p in patch_size)
        self.clip = tuple(float(v) for v in intensity["clip"])
        self.mean, self.std = float(intensity["mean"]), float(intensity["std"])
        self.samples = int(samples_per_epoch)
        self.seed = int(seed)
        self.epoch = 0
        self.sampling = sampling or Sampling()
        self.augment = augment
        lesion = np.array(self.sampling.lesion_labels, np.uint8)
        # flat voxel indices per case, computed once: sampling a centre is then one integer draw
        self._lesion = [np.flatnonzero(np.isin(c.labels, lesion)) for c in self.cases]
        self._fg = [np.flatnonzero(c.labels) for c in self.cases]
        self._spatial = self._intensity = None
        if augment is not None:
            big = tuple(int(np.ceil(p * 1.45)) for p in self.patch)  # room for rotation and zoom-out
            self._big = big
            rad = float(np.deg2rad(augment.rotate_deg))
            self._spatial = RandAffined(
                keys=["image", "label"], prob=1.0, rotate_range=(rad,) * 3, scale_range=(augment.scale,) * 3,
                spatial_size=self.patch, mode=("bilinear", "nearest"), padding_mode="border", cache_grid=True,
            )
            self._intensity = Compose(
                [
                    RandShiftIntensityd(keys="image", offsets=augment.shift, prob=augment.intensity_prob),
                    RandScaleIntensityd(keys="image", factors=augment.intensity_scale, prob=augment.intensity_prob),
                    RandGaussianNoised(keys="image", std=augment.noise_std, prob=augment.noise_prob),
                ]
            )

    def set_epoch(self, epoch: int) -> None:
        """Draw a different (still deterministic) set of patches for this epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.samples

    def centre(self, rng: np.random.Generator, c: int) -> tuple[np.ndarray, str]:
        """A patch centre in case c and what it was chosen for ("lesion", "foreground" or "random")."""
        shape = self.cases[c].image.shape
        r = rng.random()
        s = self.sampling
        if r < s.lesion_fraction and self._lesion[c].size:
            return np.array(np.unravel_index(rng.choice(self._lesion[c]), shape)), "lesion"
        if r < s.lesion_fraction + s.foreground_fraction and self._fg[c].size:
            return np.array(np.unravel_index(rng.choice(self._fg[c]), shape)), "foreground"
        return np.array([rng.integers(n) for n in shape]), "random"

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.samples:
            raise IndexError(i)
        rng = np.random.default_rng([self.seed, self.epoch, int(i)])
        c = int(rng.integers(len(self.cases)))
        centre, why = self.centre(rng, c)
        spatial = self._spatial is not None and rng.random() < self.augment.spatial_prob
        size = self._big if spatial else self.patch
        image, label = crop(self.cases[c].image, centre, size, self.clip[0]), crop(self.cases[c].labels, centre, size, 0)
        image = (image - np.float32(self.mean)) / np.float32(self.std)
        d = {"image": torch.from_numpy(image)[None], "label": torch.from_numpy(label.astype(np.float32))[None]}
        if spatial:
            self._spatial.set_random_state(int(rng.integers(2**31)))
            d = self._spatial(d)
        if self._intensity is not None:
            self._intensity.set_random_state(int(rng.integers(2**31)))
            d = self._intensity(d)
        return {
            "image": torch.as_tensor(d["image"]).float().contiguous(),
            "label": torch.as_tensor(d["label"])[0].round().long().contiguous(),
            "case": c,
            "centre": why,
        }


def crop(volume: np.ndarray, centre: Sequence[int], size: Sequence[int], fill: float) -> np.ndarray:
    """The box of `size` centred on `centre` (start = centre - size // 2), padded with `fill` outside the volume."""
    out = np.full(tuple(size), fill, dtype=np.float32 if volume.dtype.kind == "f" else volume.dtype)
    src, dst = [], []
    for c, s, n in zip(centre, size, volume.shape, strict=True):
        start = int(c) - s // 2
        lo, hi = max(start, 0), min(start + s, n)
        if lo >= hi:
            return out
        src.append(slice(lo, hi))
        dst.append(slice(lo - start, hi - start))
    out[tuple(dst)] = volume[tuple(src)]
    return out
