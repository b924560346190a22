"""Fixtures for the training tests: tiny models and their META."""

from __future__ import annotations

import pytest
import torch
from eanno_training.checkpoint import CLASS_NAMES, make_meta
from eanno_training.models import build_model, tiny_config


@pytest.fixture
def tiny_model() -> tuple[torch.nn.Module, object, dict]:
    """A seeded tiny decoder-only TransUNet (32^3 patch), its config and a META at 4 mm spacing."""
    torch.manual_seed(0)
    cfg = tiny_config("decoder")
    meta = make_meta(list(CLASS_NAMES), (4.0, 4.0, 4.0), cfg.patch_size, mean=50.0, std=200.0)
    return build_model(cfg).eval(), cfg, meta


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    """One intra-op thread: on the shared 2-core machine oversubscribed OpenMP threads are 5-10x slower."""
    torch.set_num_threads(1)
