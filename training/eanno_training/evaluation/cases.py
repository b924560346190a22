"""Where evaluation cases come from: AbdomenAtlas case folders, prediction folders, generated phantoms.

Everything is brought to nibabel's closest canonical orientation (RAS+), the model-facing order of
CONTRACTS.md, so probabilities from the predictor, label maps and ground truth share one grid.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from ..data.atlas import DataError, load_nifti, voxel_spacing
from ..data.labels import CLASS_NAMES

# One error for a case that cannot be read, whether training or evaluation reads it (the one reader,
# eanno_training.data.atlas, raises it; evaluation adds prediction files that do not fit their case).
CaseError = DataError


@dataclass(frozen=True)
class Case:
    """A scan in canonical orientation: CT (HU), ground truth (6-class map), affine and spacing."""

    name: str
    ct: np.ndarray
    truth: np.ndarray
    affine: np.ndarray

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along the (canonical) array axes."""
        return voxel_spacing(self.affine)


def canonical(img: nib.spatialimages.SpatialImage) -> tuple[np.ndarray, np.ndarray]:
    """(array, affine) of an image in its closest canonical orientation."""
    c = nib.as_closest_canonical(img)
    return np.asanyarray(c.dataobj), c.affine


def _check_labels(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.ndim != 3:
        raise CaseError(f"{path}: a label map must be 3D, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.mod(arr, 1) == 0):
            raise CaseError(f"{path}: label map holds non-integer values")
    if arr.size and (arr.min() < 0 or arr.max() >= len(CLASS_NAMES)):
        raise CaseError(
            f"{path}: labels must be 0..{len(CLASS_NAMES) - 1}, found {int(arr.min())}..{int(arr.max())}"
        )
    return arr.astype(np.uint8)


def read_atlas_case(folder: str | Path) -> Case:
    """One AbdomenAtlas case folder (ct.nii.gz + labels) as a canonical Case.

    Read by the training reader (eanno_training.data.read_atlas_case), so a case is evaluated on the
    same map it is trained on: segmentations/ (the whole-organ pancreas with duct and lesions painted
    over it in label order) when present, else combined_labels.nii.gz.
    """
    from ..data.atlas import read_atlas_case as read_training_case

    folder = Path(folder)
    if not (folder / "ct.nii.gz").is_file():
        raise CaseError(f"{folder}: no ct.nii.gz")
    case = read_training_case(folder)
    if case.labels is None:
        raise CaseError(f"{folder}: neither segmentations/ nor combined_labels.nii.gz")
    return Case(case.name, np.asarray(case.image), np.asarray(case.labels, np.uint8), case.affine)


def atlas_case_dirs(root: str | Path) -> list[Path]:
    """Case folders under root (those holding ct.nii.gz), sorted by name; an error when there are none."""
    root = Path(root)
    if not root.is_dir():
        raise CaseError(f"{root}: not a folder")
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and (p / "ct.nii.gz").is_file())
    if not dirs:
        raise CaseError(
            f"{root}: no case folders with ct.nii.gz (AbdomenAtlas layout: CASE/ct.nii.gz + CASE/combined_labels.nii.gz or CASE/segmentations/)"
        )
    return dirs


def find_prediction(pred_dir: Path, name: str, suffixes: tuple[str, ...]) -> Path:
    """pred_dir/<name><suffix> or pred_dir/<name>/labels<suffix>; a CaseError naming what was looked for."""
    for suf in suffixes:
        for p in (pred_dir / f"{name}{suf}", pred_dir / name / f"labels{suf}"):
            if p.is_file():
                return p
    raise CaseError(f"{pred_dir}: no prediction for case {name!r} (looked for {name}{suffixes[0]})")


def read_label_prediction(path: Path, case: Case) -> np.ndarray:
    """A predicted label map (NIfTI) on the case's grid, canonical."""
    arr, aff = canonical(load_nifti(path))
    arr = _check_labels(np.asarray(arr), path)
    if arr.shape != case.truth.shape or not np.allclose(aff, case.affine, atol=1e-3):
        raise CaseError(
            f"{path}: not on the grid of case {case.name} (shape {arr.shape} vs {case.truth.shape}, or another affine)"
        )
    return arr


def read_probs(path: Path, case: Case) -> np.ndarray:
    """Probabilities (6, *canonical shape) from .npy or .npz (key 'probs'), checked against the case."""
    try:
        data = np.load(path)
        probs = data["probs"] if isinstance(data, np.lib.npyio.NpzFile) else data
    except (OSError, ValueError, KeyError) as e:
        raise CaseError(
            f"{path}: cannot read probabilities ({e}); expected .npy or .npz with key 'probs'"
        ) from e
    if probs.shape != (len(CLASS_NAMES), *case.truth.shape):
        raise CaseError(
            f"{path}: probabilities have shape {probs.shape}, expected {(len(CLASS_NAMES), *case.truth.shape)} (canonical grid of {case.name})"
        )
    return np.asarray(probs, np.float32)


def phantom_cases(n: int, seed: int, **kwargs: object) -> Iterator[Case]:
    """n generated phantoms (seeds from phantom_seeds(seed, n)), canonical; kwargs go to generate_phantom."""
    from ..phantoms import generate_phantom, phantom_seeds

    for i, s in enumerate(phantom_seeds(seed, n)):
        ph = generate_phantom(s, **kwargs)  # type: ignore[arg-type]
        ct, aff = canonical(nib.Nifti1Image(ph.ct, ph.affine))
        truth, _ = canonical(nib.Nifti1Image(ph.labels, ph.affine))
        yield Case(f"phantom_{i:04d}", np.asarray(ct), np.asarray(truth, np.uint8), aff)
