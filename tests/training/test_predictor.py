"""The sliding window of CONTRACTS.md: one patch == one forward pass; tiling, weights, resampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from eanno_contracts.geometry import target_shape
from eanno_training.predictor import Predictor


def _volume(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-1200, 1200, size=shape).astype(np.int16)


def test_one_patch_at_model_spacing_equals_one_forward_pass(tiny_model) -> None:
    model, cfg, meta = tiny_model
    vol = _volume(cfg.patch_size)
    probs = Predictor(model, meta).predict(vol, meta["spacing"])
    x = (np.clip(vol.astype(np.float32), -1000, 1000) - 50.0) / 200.0
    with torch.no_grad():
        ref = model(torch.from_numpy(x)[None, None])[0].numpy()
    assert probs.dtype == np.float32 and probs.shape == (6, *cfg.patch_size)
    np.testing.assert_allclose(probs, ref, atol=1e-6)


def test_other_spacing_padding_and_batching(tiny_model) -> None:
    model, cfg, meta = tiny_model
    # 3 mm voxels, one axis shorter than the patch after resampling (padded), others tiled.
    vol, spacing = _volume((50, 40, 12), seed=1), (3.0, 3.5, 2.0)
    assert target_shape(vol.shape, spacing, meta["spacing"]) == (38, 35, 6)
    p1 = Predictor(model, meta, batch_size=1).predict(vol, spacing)
    p3 = Predictor(model, meta, batch_size=3).predict(vol, spacing)
    assert p1.shape == (6, 50, 40, 12)
    np.testing.assert_allclose(p1.sum(0), 1.0, atol=1e-5)
    np.testing.assert_allclose(p1, p3, atol=1e-5)
    with pytest.raises(ValueError, match="3D"):
        Predictor(model, meta).predict(vol[0], spacing)
