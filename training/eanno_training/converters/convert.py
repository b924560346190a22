"""Find (image, label) pairs of a public data set and write each as an AbdomenAtlas case folder."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
from eanno_contracts.errors import EannoError

from ..data.labels import LabelTable
from ..phantoms.writer import atlas_masks, nifti

log = logging.getLogger(__name__)


class ConvertError(EannoError, ValueError):
    """A data set folder or file that cannot be converted; the message names it."""


def _stem(p: Path) -> str:
    return p.name.removesuffix(".gz").removesuffix(".nii")


def find_pairs(root: str | Path, fmt: str) -> list[tuple[str, Path, Path]]:
    """(case name, image, label) for every labelled case of an MSD Task07 or PANORAMA folder.

    MSD: imagesTr/pancreas_001.nii.gz + labelsTr/pancreas_001.nii.gz. PANORAMA: images named
    <patient>_<study>_0000.nii.gz anywhere under root (the zenodo batches), labels <patient>_<study>.nii.gz
    under a labels folder (panorama_labels: automatic_labels/ or manual_labels/; manual wins).
    """
    root = Path(root)
    if not root.is_dir():
        raise ConvertError(f"{root}: not a folder")
    pairs = []
    if fmt == "msd":
        image_dir, label_dir = root / "imagesTr", root / "labelsTr"
        if not image_dir.is_dir() or not label_dir.is_dir():
            raise ConvertError(f"{root}: an MSD task folder holds imagesTr/ and labelsTr/")
        for lab in sorted(label_dir.glob("*.nii*")):
            if lab.name.startswith("._"):
                continue  # macOS resource forks shipped inside the MSD tarball
            img = image_dir / lab.name
            if not img.is_file():
                raise ConvertError(f"{lab}: no image {img}")
            pairs.append((_stem(lab), img, lab))
    elif fmt == "panorama":
        images = {_stem(p).removesuffix("_0000"): p for p in sorted(root.rglob("*_0000.nii*"))}
        labels: dict[str, Path] = {}
        for lab in sorted(root.rglob("*.nii*")):
            if lab.name.endswith(("_0000.nii.gz", "_0000.nii")) or "label" not in str(lab.parent).lower():
                continue
            if _stem(lab) not in labels or "manual" in str(lab.parent).lower():
                labels[_stem(lab)] = lab
        for name, lab in sorted(labels.items()):
            if name not in images:
                log.warning("%s: no image %s_0000.nii.gz under %s; skipped", lab, name, root)
                continue
            pairs.append((name, images[name], lab))
    else:
        raise ConvertError(f"format must be 'msd' or 'panorama', got {fmt!r}")
    if not pairs:
        raise ConvertError(f"{root}: no labelled cases found in the {fmt} layout")
    return pairs


def convert_case(image: Path, label: Path, table: LabelTable, out: Path) -> Path:
    """One case -> out/ct.nii.gz, out/combined_labels.nii.gz, out/segmentations/*.nii.gz (input grid kept)."""
    try:
        img, lab = nib.load(str(image)), nib.load(str(label))
    except Exception as e:  # nibabel raises several types for a bad file
        raise ConvertError(f"{image} / {label}: not readable NIfTI ({e})") from e
    if img.shape != lab.shape or not np.allclose(img.affine, lab.affine, atol=1e-3):
        raise ConvertError(
            f"{label}: not on the grid of {image} (shape {lab.shape} vs {img.shape}, or another affine)"
        )
    raw = np.asanyarray(lab.dataobj)
    if not np.all(np.mod(raw, 1) == 0):
        raise ConvertError(f"{label}: label values must be integers")
    labels = table.convert(np.rint(raw).astype(np.int64)).astype(np.uint8)
    ct = np.asanyarray(img.dataobj)
    ct = np.clip(np.rint(ct), -32768, 32767).astype(np.int16)
    if out.exists():
        raise ConvertError(f"{out}: exists; remove it or choose another --out")
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # a leftover of an interrupted run
    try:
        (tmp / "segmentations").mkdir(parents=True)
        nib.save(nifti(ct, img.affine), tmp / "ct.nii.gz")
        nib.save(nifti(labels, img.affine), tmp / "combined_labels.nii.gz")
        for name, mask in atlas_masks(labels).items():
            nib.save(nifti(mask, img.affine), tmp / "segmentations" / f"{name}.nii.gz")
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def convert_dataset(
    root: str | Path,
    fmt: str,
    out: str | Path,
    table: LabelTable,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Convert every labelled case of root; returns the written case folders."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, img, lab in find_pairs(root, fmt):
        written.append(convert_case(img, lab, table, out / name))
        if progress:
            progress(name)
    return written
