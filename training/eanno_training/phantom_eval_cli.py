"""`eanno-train evaluate` and `calibrate`: the shipped (or a given) model on newly generated phantoms."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .seeds import CALIBRATION_SEED, HELD_OUT_SEED


@click.command()
@click.option(
    "--checkpoint",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Checkpoint to evaluate (default: the shipped model).",
)
@click.option(
    "--phantoms",
    "n",
    type=click.IntRange(min=1),
    required=True,
    help="Number of newly generated held-out phantoms.",
)
@click.option(
    "--seed",
    type=int,
    default=HELD_OUT_SEED,
    show_default=True,
    help="Held-out set seed (use one never used for training or calibration).",
)
@click.option(
    "--theta", type=float, default=None, help="Operating threshold (default: the checkpoint's META theta)."
)
@click.option(
    "--shape",
    nargs=3,
    type=int,
    default=None,
    help="Fixed phantom shape (default: drawn field of view at native spacing).",
)
@click.option("--device", default=None, help="cpu or cuda (default: cuda when available).")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="CPU threads for torch (default: torch's choice).",
)
@click.option(
    "--thetas",
    default=None,
    help='Also score these comma-separated thresholds on the same predictions (JSON "sweep").',
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def evaluate(
    checkpoint: Path | None,
    n: int,
    seed: int,
    theta: float | None,
    shape: tuple[int, ...] | None,
    device: str | None,
    threads: int | None,
    thetas: str | None,
    as_json: bool,
) -> None:
    """Pancreas Dice, lesion sensitivity and FP per scan (before/after post-processing) on held-out phantoms.

    Pancreas Dice is the whole organ (every non-background label) per scan, averaged. A ground-truth
    lesion component is detected when a predicted lesion component (any lesion class) overlaps it; a
    false positive is a predicted lesion component overlapping no ground-truth lesion. "lesion_sensitivity"
    is after post-processing (eanno_postproc.refine at the checkpoint's theta), "_before" on the raw candidates.
    "patient_specificity": share of lesion-free scans with no lesion region left after post-processing;
    "lesion_class_accuracy": share of detected lesions whose class (that of the prediction sharing the
    most voxels) is the true one.
    """
    from .checkpoint import CheckpointError
    from .evaluate import evaluate_phantoms

    if threads:
        import torch

        torch.set_num_threads(threads)

    try:
        sweep = () if thetas is None else tuple(float(t) for t in thetas.split(",") if t.strip())
    except ValueError as e:
        raise click.BadParameter(f"not a list of numbers: {thetas!r}", param_hint="--thetas") from e
    try:
        result = evaluate_phantoms(
            checkpoint,
            n,
            seed,
            theta=theta,
            shape=shape or None,
            device=device,
            progress=not as_json,
            sweep=sweep,
        )
    except (CheckpointError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps(result))
    else:
        sens = result["lesion_sensitivity"]
        click.echo(f"{result['scans']} phantoms, theta {result['theta']}")
        click.echo(f"pancreas Dice        {result['pancreas_dice']:.4f}")
        click.echo(
            "lesion sensitivity   "
            + ", ".join(f"{k} {v:.3f}" if v is not None else f"{k} -" for k, v in sens.items())
        )
        click.echo(
            f"FP per scan          before {result['fp_per_scan']['before']:.2f}, after {result['fp_per_scan']['after']:.2f}"
        )

        def pct(v: float | None) -> str:
            return "-" if v is None else f"{v:.3f}"

        click.echo(
            f"patient specificity  {pct(result['patient_specificity'])} ({result['normal_scans']} lesion-free scans)"
        )
        click.echo(f"lesion class right   {pct(result['lesion_class_accuracy'])}")


@click.command()
@click.option(
    "--checkpoint",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Checkpoint whose META theta is set.",
)
@click.option(
    "--phantoms",
    "n",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Calibration phantoms (not the held-out test set).",
)
@click.option(
    "--seed",
    type=int,
    default=CALIBRATION_SEED,
    show_default=True,
    help="Calibration set seed (as eanno-calibrate threshold's; never a held-out seed).",
)
@click.option(
    "--target",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.99,
    show_default=True,
    help="Target pooled lesion sensitivity after post-processing.",
)
@click.option(
    "--thetas",
    default=None,
    help="Comma-separated thresholds to sweep (default: eanno-calibrate's 40 log-spaced from 1e-4 to 0.9).",
)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for torch.")
@click.option("--device", default="cpu", show_default=True, help="Where the predictor runs: cpu, cuda ...")
@click.option(
    "--or-best",
    is_flag=True,
    help="When no theta reaches --target, write the most sensitive one (recorded as not reached) instead of failing.",
)
@click.option("--dry-run", is_flag=True, help="Print the sweep and the choice, do not write the checkpoint.")
def calibrate(
    checkpoint: Path,
    n: int,
    seed: int,
    target: float,
    thetas: str | None,
    threads: int | None,
    device: str,
    or_best: bool,
    dry_run: bool,
) -> None:
    """Sweep theta on calibration phantoms; write the largest theta reaching --target into META.

    The same calibrator as `eanno-calibrate threshold --phantoms N` (calibration/threshold.py); exits 1
    without writing when no swept theta reaches the target (unless --or-best).
    """
    from .calibration.threshold import ThresholdError, chosen_theta, sweep_thetas, write_theta
    from .checkpoint import CheckpointError
    from .evaluation.cases import phantom_cases
    from .evaluation.froc import DEFAULT_THETAS
    from .evaluation.run import predictor_probs

    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        grid = DEFAULT_THETAS if thetas is None else sorted({float(t) for t in thetas.split(",")})
    except ValueError as e:
        raise click.BadParameter(f"--thetas must be numbers separated by commas, got {thetas!r}") from e
    if not grid or not all(0 < t < 1 for t in grid):
        raise click.BadParameter(f"every theta must lie in (0, 1), got {thetas!r}")
    try:
        ev = sweep_thetas(
            phantom_cases(n, seed), predictor_probs(checkpoint, device=device), grid, target=target
        )
        record = {
            **chosen_theta(ev, or_best=or_best),
            "phantoms": n,
            "seed": seed,
            "cases": f"{n} phantoms, seed {seed}",
        }
        if not dry_run:
            write_theta(checkpoint, checkpoint, record["theta"], record)
    except (CheckpointError, ThresholdError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(json.dumps(record))
