"""`eanno-train`: pre-train, fine-tune, write phantoms, evaluate. Runs unchanged under torchrun (DDP)."""

from __future__ import annotations

import json
import logging
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from eanno_contracts.cli import ErrorGroup, add_version

from .seeds import CALIBRATION_SEED, HELD_OUT_SEED

log = logging.getLogger("eanno_training")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(message)s"
    )


def training_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by pretrain and finetune (each overrides the config file)."""
    opts = [
        click.option(
            "--config",
            "config_path",
            default=None,
            help="Run config YAML, or a packaged name (small_phantom, full_decoder). Default: small_phantom.",
        ),
        click.option(
            "--data",
            "data_dir",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            default=None,
            help="Folder of cases in the AbdomenAtlas layout (CASE/ct.nii.gz + CASE/segmentations/).",
        ),
        click.option(
            "--phantoms",
            "n_phantoms",
            type=click.IntRange(min=1),
            default=None,
            help="Train on N synthetic phantoms generated from --seed instead of --data.",
        ),
        click.option(
            "--out",
            "out_dir",
            type=click.Path(file_okay=False, path_type=Path),
            required=True,
            help="Run folder: last.pt (with resume state) and best.pt are written there.",
        ),
        click.option(
            "--seed",
            type=int,
            default=0,
            show_default=True,
            help="Seeds phantoms, patch sampling and weights.",
        ),
        click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override train.epochs."),
        click.option(
            "--iters",
            "iters_per_epoch",
            type=click.IntRange(min=1),
            default=None,
            help="Override iterations (batches) per epoch.",
        ),
        click.option(
            "--batch-size",
            type=click.IntRange(min=1),
            default=None,
            help="Override the batch size per process.",
        ),
        click.option(
            "--lr",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="Override the learning rate.",
        ),
        click.option(
            "--resume",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help="Continue a run from its last.pt.",
        ),
        click.option(
            "--export",
            "export_path",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="Also write the best model (no resume state) here, e.g. the shipped weights path.",
        ),
        click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)."),
        click.option(
            "--threads",
            type=click.IntRange(min=1),
            default=None,
            help="CPU threads for torch (default: torch's choice; 1 is fastest on a busy shared CPU).",
        ),
        click.option("--no-progress", is_flag=True, help="No progress bar (logs only)."),
        click.option("-v", "--verbose", is_flag=True, help="Log every epoch."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


@click.group(cls=ErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Train, fine-tune and evaluate EfficientAnno segmenters (3D TransUNet and MONAI backbones).

    \b
    Typical use:
      eanno-train phantoms --n 10 --seed 1 --out phantoms/          # synthetic cases on disk
      eanno-train pretrain --data atlas/ --label-table my_table.yaml --out runs/pre
      eanno-train finetune --data pancreas/ --init runs/pre/best.pt --out runs/ft
      eanno-train evaluate --phantoms 20 --seed 99 --json            # the shipped model
    Multi-GPU / multi-node: prefix any training command with `torchrun --nproc_per_node=G`.
    """


def _train_command(kind: str, label_table: str | None, init: Path | None, **kw: Any) -> None:
    from .checkpoint import CheckpointError
    from .settings import load_run_config, override

    _setup_logging(kw["verbose"])
    if kw["threads"]:
        import torch

        torch.set_num_threads(kw["threads"])
    if (kw["data_dir"] is None) == (kw["n_phantoms"] is None):
        raise click.UsageError("give exactly one of --data DIR or --phantoms N")
    cfg = load_run_config(kw["config_path"])  # SettingsError: exit 1 with its message (ErrorGroup)
    from .distributed import cleanup_distributed, setup_distributed
    from .runs import CLASSES, convert_labels, export_shipped, phantom_split, run

    classes = list(CLASSES)
    lut = None
    if label_table is not None:
        from .data.labels import load_label_table

        table = load_label_table(label_table)
        classes = list(table.target)
        lut = table.lut(dict(enumerate(CLASSES)), max_id=len(CLASSES) - 1)
    cfg = override(
        cfg,
        epochs=kw["epochs"],
        batch_size=kw["batch_size"],
        lr=kw["lr"],
        seed=kw["seed"],
        iters_per_epoch=kw["iters_per_epoch"],
        num_classes=len(classes),
        progress=not kw["no_progress"],
    )
    info = setup_distributed(kw["device"])
    t0 = time.time()
    try:
        if kw["n_phantoms"] is not None:
            train_v, val_v = phantom_split(cfg, kw["n_phantoms"], kw["seed"])
        else:
            from .atlas_volumes import atlas_split

            train_v, val_v = atlas_split(cfg, kw["data_dir"], label_table)
        if lut is not None and kw["n_phantoms"] is not None:
            train_v, val_v = convert_labels(train_v, lut), convert_labels(val_v, lut)
        provenance = {
            "command": "eanno-train " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            "kind": kind,
            "seed": kw["seed"],
            "phantoms": kw["n_phantoms"],
            "data": str(kw["data_dir"]) if kw["data_dir"] else None,
            "epochs": cfg.train.epochs,
            "iters_per_epoch": cfg.iters_per_epoch,
            "batch_size": cfg.train.batch_size,
            "world_size": info.world_size,
            "init": str(init) if init else None,
            "threads": kw["threads"],
            # read by eanno_postproc.flags: a phantom-only model flags scans that are not phantoms
            "phantom_only": kw["n_phantoms"] is not None and init is None,
        }
        history = run(
            cfg, classes, train_v, val_v, kw["out_dir"], info, provenance, init=init, resume=kw["resume"]
        )
        if info.is_main:
            if kw["export_path"] is not None:
                export_shipped(kw["out_dir"], kw["export_path"], history)
            last = history[-1] if history else {}
            click.echo(
                json.dumps(
                    {
                        "out": str(kw["out_dir"]),
                        "epochs": len(history),
                        "seconds": round(time.time() - t0, 1),
                        "loss": last.get("loss"),
                        "val_dice": last.get("val_dice"),
                    }
                )
            )
    except (
        CheckpointError,
        FileNotFoundError,
        ValueError,
    ) as e:  # DataError, LabelTableError are ValueErrors
        raise click.ClickException(str(e)) from e
    finally:
        cleanup_distributed(info)


@main.command()
@training_options
@click.option(
    "--label-table",
    default=None,
    help="Class set: a packaged table name or a YAML file (target classes and source mapping).",
)
@click.option(
    "--init",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Start from these weights (same class set).",
)
def pretrain(label_table: str | None, init: Path | None, **kw: Any) -> None:
    """Pre-train on any class set (e.g. a multi-organ atlas) mapped through a label table."""
    _train_command("pretrain", label_table, init, **kw)


@main.command()
@training_options
@click.option(
    "--init",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Pre-trained checkpoint: every weight but the class head is loaded; the head is new (6 classes).",
)
@click.option(
    "--from-reviewed",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Fine-tune the whole model (--init, default the shipped one) on the approved cases of an "
    "eanno-client output folder, revised labels as truth (training/README.md, 'From reviewed cases').",
)
def finetune(init: Path | None, from_reviewed: Path | None, **kw: Any) -> None:
    """Fine-tune on the 6 pancreas classes, optionally from pre-trained weights with a new head."""
    if from_reviewed is not None:
        from .reviewed_cli import finetune_from_reviewed

        finetune_from_reviewed(from_reviewed, init, **kw)
        return
    _train_command("finetune", None, init, **kw)


@main.command()
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


def _add_phantoms_command() -> None:
    """`eanno-train phantoms`: the phantoms package's own command (one definition, two entry points)."""
    from .phantoms.cli import phantoms_command

    main.add_command(phantoms_command)


_add_phantoms_command()


@main.command()
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


add_version(main, "eanno-training")  # --version on the command and every subcommand
