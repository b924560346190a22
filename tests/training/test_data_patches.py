"""Resampling conventions and the patch dataset (foreground oversampling, augmentation, determinism)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from eanno_training.data import (
    Augment,
    PatchDataset,
    Prepared,
    Sampling,
    crop,
    intensity_stats,
    phantom_cases,
    resample_image,
    resample_labels,
    target_shape,
)
from scipy import ndimage

PATCH = (32, 32, 24)


@pytest.fixture(scope="module")
def cases() -> list[Prepared]:
    return phantom_cases(3, 7, (3.0, 3.0, 3.0), n_lesions=2)


def test_target_shape_and_trilinear_match_scipy_zoom_align_corners() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(13, 9, 7)).astype(np.float32)
    shape = target_shape(x.shape, (0.8, 1.0, 5.0), (2.0, 2.0, 2.0))
    assert shape == (5, 4, 18)
    ref = ndimage.zoom(
        x.astype(np.float64), np.divide(shape, x.shape), order=1, grid_mode=False, mode="nearest"
    )
    assert ref.shape == shape
    assert np.allclose(resample_image(x, shape), ref, atol=1e-5)
    assert resample_image(x, x.shape) is x or np.array_equal(resample_image(x, x.shape), x)


def test_label_resampling_is_nearest_on_the_same_grid() -> None:
    labels = np.random.default_rng(1).integers(0, 6, (6, 5, 4)).astype(np.uint8)
    up = resample_labels(labels, (11, 9, 7))  # n' = 2n - 1: every other output voxel is an input voxel
    assert up.dtype == np.uint8 and np.array_equal(up[::2, ::2, ::2], labels)
    ref = ndimage.zoom(labels, np.divide((3, 3, 2), labels.shape), order=0, grid_mode=False)
    assert np.array_equal(resample_labels(labels, (3, 3, 2)), ref)


def test_prepared_phantoms_keep_pancreas_and_lesions(cases: list[Prepared]) -> None:
    for c in cases:
        assert c.image.dtype == np.float32 and c.labels.shape == c.image.shape
        assert c.image.min() >= -1000 and c.image.max() <= 1000
        assert (c.labels == 1).sum() > 500
        assert np.isin(c.labels, (3, 4, 5)).sum() > 10
        assert c.spacing == pytest.approx((3.0, 3.0, 3.0), rel=0.05)
        # the prepared grid's affine keeps world positions: lesion centroids land where the phantom put them
        comps, n = ndimage.label(np.isin(c.labels, (3, 4, 5)))
        centres = [
            c.affine[:3, :3] @ m + c.affine[:3, 3]
            for m in ndimage.center_of_mass(comps > 0, comps, range(1, n + 1))
        ]
        for les in c.meta["lesions"]:
            assert min(np.linalg.norm(x - les["centre_world"]) for x in centres) < 3.0


def test_intensity_stats_are_the_mean_and_std_of_all_voxels(cases: list[Prepared]) -> None:
    stats = intensity_stats(cases)
    allv = np.concatenate([c.image.ravel() for c in cases]).astype(np.float64)
    assert stats["clip"] == [-1000.0, 1000.0]
    assert stats["mean"] == pytest.approx(allv.mean(), rel=1e-6) and stats["std"] == pytest.approx(
        allv.std(), rel=1e-6
    )


def test_crop_pads_outside_the_volume() -> None:
    vol = np.arange(27, dtype=np.float32).reshape(3, 3, 3)
    out = crop(vol, (0, 0, 0), (3, 3, 3), -5.0)
    assert out[1, 1, 1] == vol[0, 0, 0] and out[0, 0, 0] == -5.0 and out[2, 2, 2] == vol[1, 1, 1]


def test_patches_have_the_right_shapes_and_oversample_lesions(cases: list[Prepared]) -> None:
    stats = intensity_stats(cases)
    ds = PatchDataset(
        cases, PATCH, intensity=stats, samples_per_epoch=60, seed=3, sampling=Sampling(0.5, 0.3), augment=None
    )
    items = [ds[i] for i in range(len(ds))]
    for it in items:
        assert it["image"].shape == (1, *PATCH) and it["image"].dtype == torch.float32
        assert it["label"].shape == PATCH and it["label"].dtype == torch.int64
    kinds = [it["centre"] for it in items]
    assert 0.3 < kinds.count("lesion") / len(items) < 0.7
    centre = tuple(p // 2 for p in PATCH)
    for it in items:
        value = int(it["label"][centre])
        if it["centre"] == "lesion":
            assert value in (3, 4, 5)
        elif it["centre"] == "foreground":
            assert value > 0
    with_lesion = np.mean([bool(np.isin(it["label"].numpy(), (3, 4, 5)).any()) for it in items])
    uniform = PatchDataset(
        cases, PATCH, intensity=stats, samples_per_epoch=60, seed=3, sampling=Sampling(0.0, 0.0), augment=None
    )
    without = np.mean(
        [bool(np.isin(uniform[i]["label"].numpy(), (3, 4, 5)).any()) for i in range(len(uniform))]
    )
    assert with_lesion > without + 0.25
    # normalisation: air padding and air voxels map to (clip0 - mean) / std
    air = (-1000.0 - stats["mean"]) / stats["std"]
    assert min(float(it["image"].min()) for it in items) == pytest.approx(air, abs=1e-4)


def test_patches_are_deterministic_per_epoch_and_augmented_within_bounds(cases: list[Prepared]) -> None:
    stats = intensity_stats(cases)
    kw = dict(intensity=stats, samples_per_epoch=8, seed=5, augment=Augment(spatial_prob=1.0))
    a, b = PatchDataset(cases, PATCH, **kw), PatchDataset(cases, PATCH, **kw)
    for i in range(4):
        assert torch.equal(a[i]["image"], b[i]["image"]) and torch.equal(a[i]["label"], b[i]["label"])
    before = a[0]["image"]
    a.set_epoch(1)
    assert not torch.equal(a[0]["image"], before)
    for i in range(len(a)):
        it = a[i]
        assert it["image"].shape == (1, *PATCH) and it["label"].shape == PATCH
        assert set(torch.unique(it["label"]).tolist()) <= set(range(6))
        assert torch.isfinite(it["image"]).all()


def test_dataset_rejects_unlabelled_cases(cases: list[Prepared]) -> None:
    bare = Prepared("bare", cases[0].image, None, cases[0].spacing)
    with pytest.raises(ValueError, match="bare"):
        PatchDataset([bare], PATCH, intensity=intensity_stats(cases), samples_per_epoch=1)
