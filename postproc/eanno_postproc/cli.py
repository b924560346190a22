"""`eanno-postproc`: apply the paper's post-processing to any model's NIfTI predictions.

The only module that touches files (nibabel) and the command line (click): the library stays numpy in,
numpy out. Errors of the user's making (InputError, RulesError, unreadable files) exit 1 and click's usage
errors 2, with the file named (eanno_contracts' error layer; anything else keeps its traceback); every output is written under a temporary name and renamed only when all are complete.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import nibabel as nib
import numpy as np
from eanno_contracts.cli import ErrorGroup, add_version
from eanno_contracts.labels import CLASS_NAMES

from .rules import Rules, default_rules_text, load_rules

if TYPE_CHECKING:  # the pipeline (scipy, cc3d) is imported where `refine` runs, so --help stays fast
    from .pipeline import RefineResult

AFFINE_ATOL_MM = 1e-3  # grids whose affines differ by less than this (mm) are the same grid
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_OUT = click.Path(dir_okay=False, writable=True, path_type=Path)


@click.group(cls=ErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log what refine decides (to stderr).")
def main(verbose: bool) -> None:
    """EfficientAnno post-processing: remove or relabel lesion candidates with the paper's 4 rules."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )


@main.command("refine")
@click.option("--ct", "ct_path", type=_FILE, required=True, help="The CT (NIfTI, HU).")
@click.option(
    "--pred",
    "pred_path",
    type=_FILE,
    required=True,
    help="The model's label map on the CT grid, classes 0-5 (0 background, 1 pancreas, 2 duct, 3 PDAC, 4 cyst, 5 PNET).",
)
@click.option(
    "--probs",
    "probs_path",
    type=_FILE,
    help="Class probabilities (.npz or .npy, shape (6, *CT shape)); candidates then come from them with theta.",
)
@click.option(
    "--probs-order",
    type=click.Choice(["ijk", "kji"]),
    default="ijk",
    show_default=True,
    help="Spatial axis order of --probs: ijk = the NIfTI data order (nibabel); kji = reversed (SimpleITK, nnU-Net's .npz).",
)
@click.option(
    "--rules",
    "rules_path",
    type=_FILE,
    help="Rules file (YAML/JSON) with the limits to change; see `eanno-postproc rules`.",
)
@click.option("--theta", type=float, help="Override the rules' candidate threshold (probabilities only).")
@click.option(
    "--connectivity", type=click.Choice(["6", "18", "26"]), help="Override the rules' connectivity."
)
@click.option(
    "--out", "out_path", type=_OUT, required=True, help="Refined label map (NIfTI, uint8, the CT's grid)."
)
@click.option("--report", "report_path", type=_OUT, required=True, help="Lesion report (JSON).")
@click.option(
    "--removed",
    "removed_path",
    type=_OUT,
    help="Removed/relabelled candidates with their original class (NIfTI), to restore any with a click.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON on stdout.")
def refine_command(
    ct_path: Path,
    pred_path: Path,
    probs_path: Path | None,
    probs_order: str,
    rules_path: Path | None,
    theta: float | None,
    connectivity: str | None,
    out_path: Path,
    report_path: Path,
    removed_path: Path | None,
    as_json: bool,
) -> None:
    """Refine PRED with the rules and write OUT, REPORT (and REMOVED) on the CT's grid.

    \b
    Example (an nnU-Net prediction with its probabilities):
      eanno-postproc refine --ct case/ct.nii.gz --pred case/pred.nii.gz \\
          --probs case/pred.npz --probs-order kji \\
          --out case/refined.nii.gz --report case/report.json --removed case/removed.nii.gz
    Exit status: 0 done, 1 bad input (nothing written), 2 bad usage.
    """
    outputs = [p for p in (out_path, report_path, removed_path) if p is not None]
    if len({p.resolve() for p in outputs}) != len(outputs):
        raise click.UsageError("--out, --report and --removed must be different files")
    for p in outputs:
        if not p.parent.is_dir():
            raise click.UsageError(f"{p}: the folder {p.parent} does not exist")
    if theta is not None and probs_path is None:
        raise click.UsageError("--theta applies to --probs only (a label map already holds its candidates)")
    rules = load_rules(rules_path)  # InputError / RulesError: exit 1 with the message (ErrorGroup)
    ct_img = _load_nifti(ct_path, "CT")
    pred_img = _load_nifti(pred_path, "prediction")
    _same_grid(ct_img, ct_path, pred_img, pred_path)
    ct = np.asanyarray(ct_img.dataobj)
    kwargs: dict[str, Any] = {"labels": np.asanyarray(pred_img.dataobj)}
    if probs_path is not None:
        kwargs = {"probs": _load_probs(probs_path, probs_order, ct.shape), "theta": theta}
    from .pipeline import refine

    result = refine(
        ct,
        affine=ct_img.affine,
        rules=rules,
        connectivity=None if connectivity is None else int(connectivity),
        **kwargs,
    )
    result.report["files"] = {
        "ct": str(ct_path),
        "pred": str(pred_path),
        "probs": None if probs_path is None else str(probs_path),
    }
    writers: list[tuple[Path, Callable[[Path], object]]] = [
        (out_path, lambda tmp: nib.save(_like(ct_img, result.labels), tmp)),
        (
            report_path,
            lambda tmp: tmp.write_text(json.dumps(result.report, indent=1) + "\n", encoding="utf-8"),
        ),
    ]
    if removed_path is not None:
        writers.append((removed_path, lambda tmp: nib.save(_like(ct_img, result.removed), tmp)))
    _write_all(writers)
    click.echo(json.dumps(result.report, indent=1) if as_json else _summary_line(result, out_path))


@main.command("rules")
@click.option(
    "--check", "check_path", type=_FILE, help="Validate this rules file instead and print the rules it gives."
)
@click.option("--json", "as_json", is_flag=True, help="Print the rules as JSON (without comments).")
def rules_command(check_path: Path | None, as_json: bool) -> None:
    """Print the default rules file (copy it, edit it, pass it to refine --rules)."""
    if check_path is None and not as_json:
        click.echo(default_rules_text(), nl=False)
        return
    rules = load_rules(check_path) if check_path else Rules.defaults()
    click.echo(json.dumps(rules.to_dict(), indent=1))


def _load_nifti(path: Path, what: str) -> nib.Nifti1Image:
    try:
        img = nib.load(path)
    except Exception as e:  # nibabel raises several types for a file that is not an image
        raise click.ClickException(f"{path}: cannot read the {what} as NIfTI ({e})") from None
    if len(img.shape) != 3:
        raise click.ClickException(f"{path}: the {what} must be a 3D volume, got shape {img.shape}")
    return img


def _same_grid(a: nib.Nifti1Image, a_path: Path, b: nib.Nifti1Image, b_path: Path) -> None:
    """The prediction must lie on the CT's voxel grid: same shape and affine."""
    if a.shape != b.shape or not np.allclose(a.affine, b.affine, atol=AFFINE_ATOL_MM):
        with np.printoptions(precision=4, suppress=True):
            raise click.ClickException(
                "the CT and the prediction are not on the same grid:\n"
                f"  {a_path}: shape {a.shape}, affine\n{a.affine}\n"
                f"  {b_path}: shape {b.shape}, affine\n{b.affine}\n"
                "resample the prediction onto the CT first"
            )


def _load_probs(path: Path, order: str, shape: tuple[int, ...]) -> np.ndarray:
    """(6, *shape) probabilities from .npy, or .npz holding one array or 'probs'/'probabilities'."""
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.ndarray):
            probs = data
        else:
            with data:
                keys = list(data.keys())
                key = next(
                    (k for k in ("probs", "probabilities") if k in keys), keys[0] if len(keys) == 1 else None
                )
                if key is None:
                    raise click.ClickException(
                        f"{path}: expected one array or a 'probs'/'probabilities' key, found {keys}"
                    )
                probs = data[key]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise click.ClickException(f"{path}: cannot read probabilities as .npy/.npz ({e})") from None
    if probs.ndim == 4 and order == "kji":
        probs = np.ascontiguousarray(probs.transpose(0, 3, 2, 1))
    if probs.ndim == 4 and probs.shape[1:] != shape and probs.shape[1:] == shape[::-1] and order == "ijk":
        raise click.ClickException(
            f"{path}: probabilities of shape {probs.shape} are in reversed axis order for the CT's {shape} "
            "(SimpleITK / nnU-Net); pass --probs-order kji"
        )
    return probs


def _like(ref: nib.Nifti1Image, data: np.ndarray) -> nib.Nifti1Image:
    """A uint8 NIfTI on `ref`'s grid: same shape, affine (qform = sform), units."""
    img = nib.Nifti1Image(data.astype(np.uint8, copy=False), ref.affine)
    img.header.set_xyzt_units(*ref.header.get_xyzt_units())
    code = int(ref.header["sform_code"]) or int(ref.header["qform_code"]) or 1
    img.set_sform(ref.affine, code=code)
    img.set_qform(ref.affine, code=code)
    return img


def _write_all(writers: list[tuple[Path, Callable[[Path], object]]]) -> None:
    """Write every output under a temporary name in its folder, then rename them all."""
    temps: list[tuple[Path, Path]] = []
    try:
        for final, write in writers:
            suffix = "".join(final.suffixes) or ".tmp"
            fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix, dir=final.parent)
            os.close(fd)
            temps.append((Path(name), final))
            write(Path(name))
        for tmp, final in temps:
            os.replace(tmp, final)
    except OSError as e:
        raise click.ClickException(f"cannot write the outputs ({e}); nothing was written") from None
    finally:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)


def _summary_line(result: RefineResult, out_path: Path) -> str:
    s = result.report["summary"]
    kept = ", ".join(
        f"{n} {CLASS_NAMES[3 + i].removeprefix('pancreatic_')}"
        for i, n in enumerate(d["kept"] for d in s["by_class"].values())
    )
    notes = "".join(f"\nnote: {n}" for n in s["notes"])
    return (
        f"{out_path}: {s['candidates']} candidates, {s['kept']} kept ({kept}), {s['removed']} removed, "
        f"{s['relabelled']} relabelled{notes}"
    )


add_version(main, "eanno-postproc")  # --version on the command and every subcommand
