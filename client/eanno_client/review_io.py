"""Find and read the label maps a review compares (files or folders of cases) and summarise a batch."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from eanno_client.classes import CLASS_NAMES
from eanno_client.review import ERROR_TYPES, compare
from eanno_client.review_metrics import ReviewSettings
from eanno_client.volume import InputError

log = logging.getLogger(__name__)
MODEL_LABELS = "labels.nii.gz"  # written by `annotate` (outputs.CasePaths.labels)
REMOVED = "removed.nii.gz"  # written by `annotate` beside the labels (outputs.CasePaths.removed)
# Where a reviewer's corrected labels are looked for in a case folder, first match wins.
REVISED_NAMES = ("revised.nii.gz", "labels_revised.nii.gz", "labels.nii.gz")


@dataclass(frozen=True)
class ReviewPair:
    """One case to review: the model's labels, the revised labels and the removed candidates if present."""

    case: str
    model: Path
    revised: Path
    removed: Path | None


def _strip(name: str) -> str:
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _model_files(folder: Path) -> dict[str, Path]:
    """case -> model labels in an annotate output folder (CASE/labels.nii.gz) or a folder of NIfTI files."""
    found: dict[str, Path] = {}
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir() and (child / MODEL_LABELS).is_file():
            found[child.name] = child / MODEL_LABELS
        elif child.is_file() and child.name.endswith((".nii", ".nii.gz")):
            found[_strip(child.name)] = child
    return found


def _revised_file(folder: Path, case: str, model: Path) -> Path | None:
    """The revised labels of `case` in `folder`: CASE/<one of REVISED_NAMES> or CASE.nii(.gz)."""
    for name in REVISED_NAMES:
        p = folder / case / name
        if p.is_file() and p.resolve() != model.resolve():
            return p
    for name in (f"{case}.nii.gz", f"{case}.nii"):
        if (folder / name).is_file() and (folder / name).resolve() != model.resolve():
            return folder / name
    return None


def _removed_beside(model: Path) -> Path | None:
    p = model.parent / REMOVED
    return p if model.name == MODEL_LABELS and p.is_file() else None


def find_pairs(model: Path, revised: Path, removed: Path | None = None) -> list[ReviewPair]:
    """The cases to compare: two files, or two folders paired by case name (InputError when none pair)."""
    for p in (model, revised):
        if not p.exists():
            raise InputError(f"{p}: no such file or folder")
    if model.is_file() != revised.is_file():
        raise InputError(f"{model} and {revised}: give two label files or two folders, not one of each")
    if model.is_file():
        case = model.parent.name if model.name == MODEL_LABELS else _strip(model.name)
        return [ReviewPair(case, model, revised, removed or _removed_beside(model))]
    if removed is not None:
        raise InputError("--removed names one file; with folders it is read from each case folder")
    models = _model_files(model)
    if not models:
        raise InputError(f"{model}: holds no CASE/{MODEL_LABELS} and no .nii/.nii.gz files")
    pairs, missing = [], []
    for case, path in models.items():
        other = _revised_file(revised, case, path)
        if other is None:
            missing.append(case)
        else:
            pairs.append(ReviewPair(case, path, other, _removed_beside(path)))
    if missing:
        log.info("no revised labels for %d case(s): %s", len(missing), ", ".join(missing))
    if not pairs:
        raise InputError(
            f"{revised}: no revised labels for any case of {model} (looked for CASE/"
            f"{'|'.join(REVISED_NAMES)} and CASE.nii.gz)"
        )
    return pairs


def read_labels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A label map (uint8, values 0-5) and its affine; InputError naming the file otherwise."""
    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as e:  # nibabel raises many types for damaged files
        raise InputError(f"{path}: not a readable NIfTI file ({e})") from e
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(f"{path}: expected a 3D label map, got shape {list(data.shape)}")
    if (
        not np.all(np.equal(np.mod(data, 1), 0))
        or data.min(initial=0) < 0
        or data.max(initial=0) >= len(CLASS_NAMES)
    ):
        bad = sorted({float(v) for v in np.unique(data)} - set(range(len(CLASS_NAMES))))[:5]
        raise InputError(f"{path}: labels must be integers 0-{len(CLASS_NAMES) - 1}, found {bad}")
    return data.astype(np.uint8), np.asarray(img.affine, dtype=np.float64)


def _same_grid(
    a: Path, shape_a: tuple[int, ...], aff_a: np.ndarray, b: Path, shape_b: tuple[int, ...], aff_b: np.ndarray
) -> None:
    if shape_a != shape_b:
        raise InputError(f"{b}: shape {list(shape_b)} differs from {a} {list(shape_a)} (not the same grid)")
    if not np.allclose(aff_a, aff_b, atol=1e-3):
        raise InputError(
            f"{b}: affine differs from {a} (not the same grid; resample onto the model's labels)"
        )


def review_pair(pair: ReviewPair, settings: ReviewSettings) -> dict[str, Any]:
    """Read one pair, check the grids agree and compare them."""
    model, affine = read_labels(pair.model)
    revised, aff_r = read_labels(pair.revised)
    _same_grid(pair.model, model.shape, affine, pair.revised, revised.shape, aff_r)
    removed = None
    if pair.removed is not None:
        removed, aff_x = read_labels(pair.removed)
        _same_grid(pair.model, model.shape, affine, pair.removed, removed.shape, aff_x)
    result = compare(model, revised, affine, removed, settings)
    return {
        "case": pair.case,
        "model": str(pair.model),
        "revised": str(pair.revised),
        "removed": str(pair.removed) if pair.removed else None,
        **result,
    }


def batch_summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over the cases: lesion counts, error types, edit effort, cases left unchanged."""
    counts: dict[str, int] = {}
    for r in results:
        for k, v in r["lesion_counts"].items():
            counts[k] = counts.get(k, 0) + v
    errors = {k: sum(r["errors"][k] for r in results) for k in ERROR_TYPES}
    voxels = [r["effort"]["voxels_changed"] for r in results]
    sdice = [x["surface_dice"] for r in results for x in r["lesions"] if x["kind"] == "matched"]
    return {
        "cases": len(results),
        "cases_unchanged": sum(1 for v in voxels if v == 0),
        "lesion_counts": counts,
        "errors": errors,
        "voxels_changed": int(sum(voxels)),
        "ml_changed": round(sum(r["effort"]["ml_changed"] for r in results), 4),
        "slices_touched": int(sum(sum(r["effort"]["slices_touched"]) for r in results)),
        "median_lesion_surface_dice": float(np.median(sdice)) if sdice else None,
    }


def format_table(results: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    """A short plain-text table: one line per case, then the batch totals."""
    head = (
        f"{'case':<20} {'lesions':>7} {'added':>5} {'deleted':>7} {'resized':>7} {'reshaped':>8} "
        f"{'missed':>6} {'restored':>8} {'FP kept':>7} {'voxels':>9} {'slices':>6}"
    )
    lines = [head, "-" * len(head)]

    def row(name: str, c: dict[str, int], e: dict[str, int], voxels: int, slices: int) -> str:
        total = c.get("matched", 0) + c.get("added", 0) + c.get("deleted", 0)
        return (
            f"{name[:20]:<20} {total:>7} {c.get('added', 0):>5} {c.get('deleted', 0):>7} "
            f"{c.get('resized', 0):>7} {c.get('reshaped', 0):>8} {e['missed']:>6} {e['restored']:>8} "
            f"{e['false_positive_kept']:>7} {voxels:>9} {slices:>6}"
        )

    for r in results:
        lines.append(
            row(
                r["case"],
                r["lesion_counts"],
                r["errors"],
                r["effort"]["voxels_changed"],
                sum(r["effort"]["slices_touched"]),
            )
        )
    if len(results) > 1:
        lines.append("-" * len(head))
        lines.append(
            row(
                f"all ({summary['cases']})",
                summary["lesion_counts"],
                summary["errors"],
                summary["voxels_changed"],
                summary["slices_touched"],
            )
        )
    return "\n".join(lines)
