"""A torch Dataset of training patches: foreground oversampling and augmentation (no flips)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from monai.transforms import Compose, RandGaussianNoised, RandScaleIntensityd, RandShiftIntensityd
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
        if (
            min(self.lesion_fraction, self.foreground_fraction) < 0
            or self.lesion_fraction + self.foreground_fraction > 1
        ):
            raise ValueError(
                f"fractions must be >= 0 and sum to <= 1, got {self.lesion_fraction}, {self.foreground_fraction}"
            )


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
            raise ValueError(
                "every training case needs labels: " + ", ".join(c.name for c in cases if c.labels is None)
            )
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
        self._intensity = None
        self._big = self.patch
        if augment is not None:
            self._big = tuple(int(np.ceil(p * 1.45)) for p in self.patch)  # room for rotation and zoom-out
            self._intensity = Compose(
                [
                    RandShiftIntensityd(keys="image", offsets=augment.shift, prob=augment.intensity_prob),
                    RandScaleIntensityd(
                        keys="image", factors=augment.intensity_scale, prob=augment.intensity_prob
                    ),
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
        spatial = self.augment is not None and rng.random() < self.augment.spatial_prob
        size = self._big if spatial else self.patch
        image, label = (
            crop(self.cases[c].image, centre, size, self.clip[0]),
            crop(self.cases[c].labels, centre, size, 0),
        )
        image = (image - np.float32(self.mean)) / np.float32(self.std)
        d = {
            "image": torch.from_numpy(image)[None],
            "label": torch.from_numpy(label.astype(np.float32))[None],
        }
        if spatial and self.augment is not None:  # spatial implies augment; said again for the type checker
            d = rotate_scale(d, self.patch, rng, self.augment)
        if self._intensity is not None:
            self._intensity.set_random_state(int(rng.integers(2**31)))
            d = self._intensity(d)
        return {
            "image": torch.as_tensor(d["image"]).float().contiguous(),
            "label": torch.as_tensor(d["label"])[0].long().contiguous(),  # nearest: already whole numbers
            "case": c,
            "centre": why,
        }


def rotate_scale(d: dict, patch: tuple[int, ...], rng: np.random.Generator, aug: Augment) -> dict:
    """Rotate (up to aug.rotate_deg about each axis) and scale (1 +- aug.scale per axis) about the centre of the
    larger crop, sampling the central patch: image trilinear, labels nearest, borders repeated.

    Hand-written with torch's affine_grid/grid_sample: MONAI's RandAffined does the same but took 0.4 s per
    64^3 patch here (its grid bookkeeping), twenty times this, which a 2-core training run cannot afford.
    """
    big = d["image"].shape[1:]
    angles = np.deg2rad(rng.uniform(-aug.rotate_deg, aug.rotate_deg, 3))
    c, s = np.cos(angles), np.sin(angles)
    rx = np.array([[1, 0, 0], [0, c[0], -s[0]], [0, s[0], c[0]]])
    ry = np.array([[c[1], 0, s[1]], [0, 1, 0], [-s[1], 0, c[1]]])
    rz = np.array([[c[2], -s[2], 0], [s[2], c[2], 0], [0, 0, 1]])
    a = rx @ ry @ rz @ np.diag(rng.uniform(1 - aug.scale, 1 + aug.scale, 3))
    # output voxel o -> input voxel centre_big + a (o - centre_patch), written in align_corners=True
    # normalised coordinates; grid_sample's (x, y, z) are the array axes reversed
    theta = np.diag(2.0 / (np.array(big) - 1)) @ a @ np.diag((np.array(patch) - 1) / 2.0)
    theta = theta[::-1, ::-1]
    t = torch.zeros(1, 3, 4)
    t[0, :, :3] = torch.from_numpy(np.ascontiguousarray(theta))
    grid = F.affine_grid(t, [1, 1, *patch], align_corners=True)
    image = F.grid_sample(d["image"][None], grid, mode="bilinear", padding_mode="border", align_corners=True)[
        0
    ]
    label = F.grid_sample(d["label"][None], grid, mode="nearest", padding_mode="border", align_corners=True)[
        0
    ]
    return {"image": image, "label": label}


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
