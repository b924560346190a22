"""Writing phantoms in the AbdomenAtlas layout: CASE/ct.nii.gz, CASE/segmentations/*.nii.gz, combined labels."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from ..labelmap import CLASS_NAMES, LESION_LABELS, LESION_UNION_NAME
from .generator import Phantom, generate_phantom

log = logging.getLogger(__name__)


def nifti(data: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    """A NIfTI image whose qform and sform are both the affine (scanner coordinates)."""
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    return img


def atlas_masks(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class binary masks as AbdomenAtlas names them: pancreas is the whole organ, plus the lesion union."""
    masks = {"pancreas": labels > 0}
    for label, name in enumerate(CLASS_NAMES[2:], start=2):
        masks[name] = labels == label
    masks[LESION_UNION_NAME] = np.isin(labels, LESION_LABELS)
    return {name: m.astype(np.uint8) for name, m in masks.items()}


def write_atlas_case(phantom: Phantom, folder: str | Path, *, overwrite: bool = False) -> Path:
    """Write the phantom as an AbdomenAtlas case folder (plus phantom.json), complete or not at all."""
    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise FileExistsError(
            f"{folder} exists (overwrite it with overwrite=True, or --overwrite on the command line)"
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the case folder should be like any other
    try:
        nib.save(nifti(phantom.ct, phantom.affine), tmp / "ct.nii.gz")
        (tmp / "segmentations").mkdir()
        for name, mask in atlas_masks(phantom.labels).items():
            nib.save(nifti(mask, phantom.affine), tmp / "segmentations" / f"{name}.nii.gz")
        nib.save(nifti(phantom.labels.astype(np.uint8), phantom.affine), tmp / "combined_labels.nii.gz")
        record = {"classes": list(CLASS_NAMES), "lesions": phantom.lesions, **phantom.meta}
        (tmp / "phantom.json").write_text(json.dumps(record, indent=1))
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old")
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def phantom_seeds(seed: int, n: int) -> list[int]:
    """The per-case seeds of a phantom set: independent streams derived from one seed."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(int(seed)).spawn(n)]


def generate_phantom_set(
    out: str | Path,
    n: int,
    seed: int,
    *,
    shape: Sequence[int] | None = None,
    spacing: Sequence[float] | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> list[Path]:
    """Write n phantoms as out/phantom_0000 ... with an index phantoms.json; returns the case folders."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = phantom_seeds(seed, n)
    cases, index = [], []
    iterator = range(n)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="phantoms", unit="case")
    for i in iterator:
        ph = generate_phantom(seeds[i], shape=shape, spacing=spacing)
        folder = write_atlas_case(ph, out / f"phantom_{i:04d}", overwrite=overwrite)
        cases.append(folder)
        index.append({"case": folder.name, "seed": seeds[i], "lesions": [les["class"] for les in ph.lesions]})
        log.info("wrote %s (%d lesions)", folder, len(ph.lesions))
    tmp = out / ".phantoms.json.tmp"
    tmp.write_text(json.dumps({"seed": int(seed), "n": n, "cases": index}, indent=1))
    os.replace(tmp, out / "phantoms.json")
    return cases
