"""Helpers for the post-processing tests: hand-built volumes, NIfTI files, the scipy baseline."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import nibabel as nib
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
TISSUE_HU = 50  # inside every class's HU window, so only the rule under test can fire


class Volume:
    """A CT (uniform soft tissue) and a label map to paint boxes into."""

    def __init__(self, shape: tuple[int, int, int] = (24, 24, 24)) -> None:
        self.ct = np.full(shape, TISSUE_HU, dtype=np.int16)
        self.labels = np.zeros(shape, dtype=np.uint8)

    def paint(self, box: tuple[slice, ...], cls: int, hu: int | None = None) -> Volume:
        """Set `box` to class `cls` (and HU `hu` when given)."""
        self.labels[box] = cls
        if hu is not None:
            self.ct[box] = hu
        return self

    def paint_count(
        self, start: tuple[int, int, int], block: tuple[int, int, int], n: int, cls: int
    ) -> Volume:
        """Exactly `n` voxels of class `cls`: the first n of `block` (at `start`) in raster order (connected)."""
        region = tuple(slice(s, s + b) for s, b in zip(start, block, strict=True))
        flat = self.labels[region].reshape(-1).copy()
        assert n <= flat.size
        flat[:n] = cls
        self.labels[region] = flat.reshape(block)
        return self


@pytest.fixture
def volume() -> type[Volume]:
    """The Volume class, so a test builds as many as it needs."""
    return Volume


@pytest.fixture(scope="session")
def baseline() -> ModuleType:
    """The benchmark's plain scipy.ndimage implementation of the same rules."""
    path = REPO / "postproc" / "benchmarks" / "baseline_scipy.py"
    spec = importlib.util.spec_from_file_location("baseline_scipy", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture
def write_nifti():
    """save_nifti, for tests (conftest is not importable under --import-mode=importlib)."""
    return save_nifti


@pytest.fixture
def oblique() -> np.ndarray:
    """oblique_affine(), for tests."""
    return oblique_affine()


def save_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    """Write `data` as NIfTI with qform = sform = `affine` (code 1, scanner)."""
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, path)
    return path


def oblique_affine() -> np.ndarray:
    """A rotated, flipped, anisotropic grid: a label map off by a flip or a transpose shows up in tests."""
    a = np.deg2rad(12.0)
    rotation = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([-0.8, 0.9, 2.5])
    affine[:3, 3] = [120.0, -80.5, 30.25]
    return affine
