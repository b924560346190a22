"""Fine-tune the deployed model on radiologist-reviewed cases: the approved (revised) labels are the truth.

A reviewed case is an `eanno-client annotate` output folder CASE/ whose review.json (written by
`eanno-client status set`, format "eanno-review-status/1") says "approved". Its truth is CASE/revised.nii.gz
(the reviewer's correction) or, when there is none, CASE/labels.nii.gz (the model's labels, approved as
they were). Its CT is CASE/ct.nii.gz, else the NIfTI named by report.json's input.path. The file formats
are the contract with the client (client/README.md, "Review"); nothing of the client is imported.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from eanno_contracts.meta import DEFAULT_STEP

from .checkpoint import load_checkpoint, make_meta
from .data import Case, DataError, Prepared, prepare
from .distributed import DistInfo
from .models import build_model
from .runs import patch_datasets
from .settings import RunConfig
from .train import seed_everything, train

log = logging.getLogger(__name__)
STATUS_FILE = "review.json"
STATUS_FORMAT = "eanno-review-status/1"
REVISED_NAMES = ("revised.nii.gz", "labels_revised.nii.gz")
MODEL_LABELS = "labels.nii.gz"
Volumes = list[Prepared]


@dataclass(frozen=True)
class ReviewedCase:
    """One approved case: its CT, its truth and whether the truth is a correction."""

    name: str
    ct: Path
    truth: Path
    corrected: bool


def _ct_path(case: Path) -> Path:
    if (case / "ct.nii.gz").is_file():
        return case / "ct.nii.gz"
    report = case / "report.json"
    try:
        source = json.loads(report.read_text())["input"]["path"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{case}: no ct.nii.gz and no input path in {report} ({e})") from e
    path = Path(source) if Path(source).is_absolute() else case / source
    if not (path.is_file() and path.name.endswith((".nii", ".nii.gz"))):
        raise DataError(
            f"{case}: the CT {path} (from {report}) is not a NIfTI file here; put it at {case}/ct.nii.gz"
        )
    return path


def reviewed_cases(root: Path) -> list[ReviewedCase]:
    """The approved cases under root, sorted by name (cases needing changes or not reviewed are left out)."""
    if not Path(root).is_dir():
        raise DataError(f"{root}: not a folder")
    cases = []
    for case in sorted(p for p in Path(root).iterdir() if (p / STATUS_FILE).is_file()):
        try:
            status = json.loads((case / STATUS_FILE).read_text())
        except ValueError as e:
            raise DataError(f"{case / STATUS_FILE}: not a readable review status file ({e})") from e
        if not isinstance(status, dict) or status.get("format") != STATUS_FORMAT:
            raise DataError(f"{case / STATUS_FILE}: not a review status file (format {STATUS_FORMAT!r})")
        if status.get("status") != "approved":
            continue
        revised = next((case / n for n in REVISED_NAMES if (case / n).is_file()), None)
        truth = revised or case / MODEL_LABELS
        if not truth.is_file():
            raise DataError(
                f"{case}: approved but holds neither {' nor '.join(REVISED_NAMES)} nor {MODEL_LABELS}"
            )
        cases.append(ReviewedCase(case.name, _ct_path(case), truth, revised is not None))
    if not cases:
        raise DataError(f"{root}: no approved case folders (CASE/{STATUS_FILE} with status 'approved')")
    return cases


def read_case(case: ReviewedCase) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """CT (HU) and truth in closest-canonical (RAS+) order, and the spacing; DataError when the grids differ."""
    ct_img, lab_img = nib.load(str(case.ct)), nib.load(str(case.truth))
    if ct_img.shape[:3] != lab_img.shape[:3] or not np.allclose(ct_img.affine, lab_img.affine, atol=1e-3):
        raise DataError(f"{case.truth}: not on the grid of {case.ct}")
    ct_c, lab_c = nib.as_closest_canonical(ct_img), nib.as_closest_canonical(lab_img)
    ct = np.asarray(ct_c.dataobj, dtype=np.float32)
    labels = np.rint(np.asarray(lab_c.dataobj)).astype(np.int64)
    if labels.min() < 0 or labels.max() > 5:
        raise DataError(f"{case.truth}: labels must be 0-5, found {labels.min()}..{labels.max()}")
    return ct, labels, tuple(float(s) for s in ct_c.header.get_zooms()[:3])


def split(cases: list[ReviewedCase], held_out: float) -> tuple[list[ReviewedCase], list[ReviewedCase]]:
    """The last `held_out` fraction of the sorted cases validate (at least one when there are 3 or more)."""
    n_val = int(round(len(cases) * held_out))
    n_val = max(n_val, 1) if len(cases) >= 3 and held_out > 0 else n_val
    return cases[: len(cases) - n_val], cases[len(cases) - n_val :]


def write_held_out(cases: list[ReviewedCase], dest: Path) -> Path:
    """The held-out cases as an AbdomenAtlas-layout folder of links (CASE/ct.nii.gz, CASE/combined_labels.nii.gz).

    So `eanno-eval ... --gt-dir dest` compares the base and the fine-tuned checkpoints on them.
    """
    for c in cases:
        folder = dest / c.name
        folder.mkdir(parents=True, exist_ok=True)
        for name, target in (("ct.nii.gz", c.ct), ("combined_labels.nii.gz", c.truth)):
            link = folder / name
            link.unlink(missing_ok=True)
            link.symlink_to(target.resolve())
    return dest


def finetune_reviewed(
    root: Path,
    base: Path | None,
    cfg: RunConfig,
    out_dir: Path,
    info: DistInfo,
    provenance: dict[str, Any],
    held_out: float = 0.2,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Continue training the base checkpoint (None: the shipped model) on the approved cases.

    The whole network, class head included, starts from the base, and the base's grid and intensity
    normalisation are kept (its META), so the result serves exactly where the base did. Optimisation
    settings (epochs, lr, batch, iterations) come from cfg. -> (history, the cases used).
    """
    train_cases, val_cases = split(reviewed_cases(root), held_out)  # the cheap checks first
    if not train_cases:
        raise DataError(
            f"{root}: every approved case is held out; approve more cases or lower the held-out share"
        )
    ck = load_checkpoint(base)
    meta = ck.meta
    spacing, clip = meta["spacing"], tuple(meta["intensity"]["clip"])
    mean, std = meta["intensity"]["mean"], meta["intensity"]["std"]

    def volumes(cases: list[ReviewedCase]) -> Volumes:
        out = []
        for c in cases:
            ct, labels, sp = read_case(c)
            case = Case(c.name, ct, labels.astype(np.uint8), np.diag([*sp, 1.0]))
            out.append(prepare(case, spacing, clip))
        return out

    seed_everything(cfg.train.seed)
    model = build_model(ck.config)
    model.load_state_dict(ck.state_dict)
    intensity = {"clip": list(clip), "mean": mean, "std": std}
    train_ds, val_ds = patch_datasets(
        cfg, volumes(train_cases), volumes(val_cases), intensity, info.world_size, patch=ck.config.patch_size
    )
    used = {
        "root": str(root),
        "base": str(base) if base else "shipped",
        "train": [c.name for c in train_cases],
        "held_out": [c.name for c in val_cases],
        "corrected": [c.name for c in train_cases + val_cases if c.corrected],
    }
    record = {
        **provenance,
        "reviewed": used,
        "base_train": meta.get("train", {}),
        "phantom_only": False,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    new_meta = make_meta(
        meta["classes"],
        spacing,
        ck.config.patch_size,
        mean,
        std,
        theta=meta["theta"],
        step=meta.get("step", DEFAULT_STEP),
        clip=clip,
        train=record,
    )
    if val_cases and info.is_main:
        used["held_out_dir"] = str(write_held_out(val_cases, Path(out_dir) / "held_out"))
    log.info(
        "fine-tuning %s on %d reviewed case(s), %d held out", used["base"], len(train_cases), len(val_cases)
    )
    history = train(model, ck.config, train_ds, val_ds, cfg.train, new_meta, out_dir, info)
    return history, used
