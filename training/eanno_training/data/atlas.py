"""Reading CT volumes and label maps (AbdomenAtlas layout or any NIfTI pair) as canonical RAS arrays."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np
from eanno_contracts.errors import EannoError

from ..labelmap import CLASS_NAMES, LESION_LABELS
from .labels import LESION_UNION_NAME, LabelTable, load_label_table

log = logging.getLogger(__name__)
NIFTI_SUFFIXES = (".nii.gz", ".nii")


class DataError(EannoError, ValueError):
    """A case that cannot be read: missing file, unreadable NIfTI, label grid unlike the CT's."""


@dataclass(frozen=True)
class Case:
    """A CT (HU, int16 or float32) and its labels (uint8 target ids, or None) in canonical RAS order."""

    name: str
    image: np.ndarray
    labels: np.ndarray | None
    affine: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along the (canonical) array axes."""
        return voxel_spacing(self.affine)


def voxel_spacing(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size in mm along the array axes of an affine."""
    return tuple(float(v) for v in np.linalg.norm(affine[:3, :3], axis=0))  # type: ignore[return-value]


def load_nifti(path: Path) -> nib.Nifti1Image:
    """Open a NIfTI file with a clear error naming it."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        img = nib.load(str(path))
    except Exception as e:  # nibabel raises several unrelated types for a damaged file
        raise DataError(f"{path}: not a readable NIfTI image ({e})") from e
    if len(img.shape) != 3:
        raise DataError(f"{path}: expected a 3D volume, got shape {img.shape}")
    return img


def canonical(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The array and affine in nibabel's closest canonical (RAS+) orientation, as a positive-stride copy."""
    img = nib.as_closest_canonical(nib.Nifti1Image(data, affine))
    return np.array(img.dataobj, order="K"), img.affine


def read_volume(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A CT volume in canonical RAS order (int16 when stored as integers without scaling, else float32)."""
    path = Path(path)
    img = nib.as_closest_canonical(load_nifti(path))
    data = np.asanyarray(img.dataobj)
    if not np.issubdtype(data.dtype, np.integer) or data.dtype.itemsize > 2:
        data = data.astype(np.float32)
    return np.array(data, order="K"), img.affine


def _check_grid(path: Path, img: nib.Nifti1Image, shape: tuple, affine: np.ndarray) -> None:
    """A label file must lie on exactly the CT's grid (a flip here is the worst possible bug)."""
    if img.shape != shape:
        raise DataError(f"{path}: shape {img.shape} differs from the CT's {shape}")
    if not np.allclose(img.affine, affine, atol=1e-3):
        raise DataError(f"{path}: affine differs from the CT's:\n{img.affine}\nvs\n{affine}")


def _integer_labels(path: Path, img: nib.Nifti1Image) -> np.ndarray:
    """Label data as non-negative integers, rejecting fractional values."""
    data = np.asanyarray(img.dataobj)
    if not np.issubdtype(data.dtype, np.integer):
        if not np.all(np.mod(data, 1) == 0):
            raise DataError(f"{path}: label values are not integers")
        data = data.astype(np.int64)
    if data.size and data.min() < 0:
        raise DataError(f"{path}: negative label {int(data.min())}")
    return data


def read_labels(
    path: str | Path,
    table: LabelTable,
    *,
    class_map: Mapping[int, str] | None = None,
    like: tuple[tuple, np.ndarray] | None = None,
) -> np.ndarray:
    """A multilabel file converted by the table, in canonical order (checked against `like`=(shape, affine))."""
    path = Path(path)
    img = load_nifti(path)
    if like is not None:
        _check_grid(path, img, *like)
    img = nib.as_closest_canonical(img)
    return np.array(table.convert(_integer_labels(path, img), class_map), order="K")


def read_segmentations(folder: str | Path, table: LabelTable, like: tuple[tuple, np.ndarray]) -> np.ndarray:
    """One binary mask per class (AbdomenAtlas): painted in target-id order so duct and lesions overlay the organ."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.name.endswith(NIFTI_SUFFIXES))
    if not files:
        raise DataError(f"{folder}: no .nii.gz masks")
    named = []
    for p in files:
        name = p.name.removesuffix(".gz").removesuffix(".nii")
        tid = table.target_of(name)
        if tid is None and name != LESION_UNION_NAME:
            log.debug("%s: class %r is not in the table, ignored", p, name)
            continue
        named.append((p, name, tid))
    out: np.ndarray | None = None
    union = None
    # the lesion union (if the table maps it) goes first among equals so specific classes override it
    for p, _name, tid in sorted(
        named, key=lambda x: (x[2] if x[2] is not None else -1, x[1] != LESION_UNION_NAME)
    ):
        img = load_nifti(p)
        _check_grid(p, img, *like)
        mask = np.asanyarray(nib.as_closest_canonical(img).dataobj) > 0
        if out is None:
            out = np.zeros(mask.shape, np.uint8)
        if tid is None:
            union = mask
            continue
        out[mask] = tid
    if out is None:
        raise DataError(f"{folder}: none of the masks {[p.name for p in files]} is mapped by the label table")
    if union is not None:
        lesion_ids = [table.target_of(CLASS_NAMES[c]) for c in LESION_LABELS]
        unclassed = union & ~np.isin(out, [i for i in lesion_ids if i])
        if unclassed.any():
            log.warning(
                "%s: %d lesion voxels have no class file and no table entry; left as they were",
                folder,
                int(unclassed.sum()),
            )
    return np.array(out, order="K")


def read_atlas_case(
    folder: str | Path,
    *,
    table: LabelTable | str | Path | None = None,
    class_map: Mapping[int, str] | None = None,
    source: Literal["auto", "segmentations", "combined", "none"] = "auto",
) -> Case:
    """Read CASE/ct.nii.gz with CASE/segmentations/*.nii.gz (or CASE/combined_labels.nii.gz) canonically."""
    folder = Path(folder)
    if source not in ("auto", "segmentations", "combined", "none"):
        raise ValueError(f"source must be auto, segmentations, combined or none, got {source!r}")
    if not folder.is_dir():
        raise DataError(f"{folder}: not a case folder")
    tbl = table if isinstance(table, LabelTable) else load_label_table(table)
    ct_path = folder / "ct.nii.gz"
    raw = load_nifti(ct_path)
    like = (raw.shape, raw.affine)
    image, affine = read_volume(ct_path)
    seg_dir, combined = folder / "segmentations", folder / "combined_labels.nii.gz"
    labels = None
    if source in ("auto", "segmentations") and seg_dir.is_dir():
        labels = read_segmentations(seg_dir, tbl, like)
    elif source in ("auto", "combined") and combined.is_file():
        labels = read_labels(combined, tbl, class_map=class_map, like=like)
    elif source != "none" and source != "auto":
        raise DataError(
            f"{folder}: no {'segmentations/' if source == 'segmentations' else combined.name} found"
        )
    meta = {}
    record = folder / "phantom.json"
    if record.is_file():
        meta = json.loads(record.read_text())
    return Case(folder.name, image, labels, affine, meta)


def read_case(
    ct: str | Path,
    labels: str | Path | None = None,
    *,
    table: LabelTable | str | Path | None = None,
    class_map: Mapping[int, str] | None = None,
    name: str | None = None,
) -> Case:
    """A CT file and an optional multilabel file (any label set, mapped by the table) as a canonical Case."""
    ct = Path(ct)
    raw = load_nifti(ct)
    image, affine = read_volume(ct)
    lab = None
    if labels is not None:
        tbl = table if isinstance(table, LabelTable) else load_label_table(table)
        lab = read_labels(labels, tbl, class_map=class_map, like=(raw.shape, raw.affine))
    return Case(name or ct.name.removesuffix(".gz").removesuffix(".nii"), image, lab, affine)
