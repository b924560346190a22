"""Helpers for tests that start a real server: free ports, the tiny repository, reference answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from eanno_serving.repository import ServingSpec, write_repository

from .conftest import TINY_META, export_tiny_onnx, tiny_net, torch_reference

MAX_VOXELS = 200_000  # small, so "volume too large" is testable cheaply


def tiny_repository(folder: Path) -> Path:
    """The python-onnxruntime repository of the tiny segmenter."""
    onnx = export_tiny_onnx(folder / "model.onnx")
    spec = ServingSpec(TINY_META, name="tiny", version="test", max_voxels=MAX_VOXELS)
    return write_repository(spec, "python-onnxruntime", folder / "repo", onnx)


def inprocess_probs(volume: np.ndarray, spacing) -> np.ndarray:
    """The in-process predictor's probabilities with the tiny net (torch, the reference implementation).

    eanno_training's Predictor when it is installed; before the model stream lands, the test's own torch
    reading of CONTRACTS.md (tests/serving/conftest.py), which test_window checks independently.
    """
    import torch

    net = tiny_net()
    try:
        from eanno_training.predictor import Predictor
    except ImportError:

        def run(batch: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return net(torch.from_numpy(batch)).numpy()

        return torch_reference(volume, spacing, TINY_META, run)
    return Predictor(net, TINY_META, batch_size=4).predict(volume, spacing)
