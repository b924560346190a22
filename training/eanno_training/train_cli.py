"""`eanno-train pretrain` and `finetune`: their shared options and the one training run behind both."""

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


def prepare_process(kw: dict[str, Any]) -> None:
    """Logging (-v: every epoch) and torch's CPU threads (--threads), as the training options ask."""
    logging.basicConfig(
        level=logging.INFO if kw["verbose"] else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    if kw["threads"]:
        import torch

        torch.set_num_threads(kw["threads"])


def with_options(cfg: Any, kw: dict[str, Any], **more: Any) -> Any:
    """The run config with the training options given on the command line (and `more`) in force."""
    from .settings import override

    given = {k: kw[k] for k in ("epochs", "batch_size", "lr", "seed", "iters_per_epoch")}
    return override(cfg, **given, progress=not kw["no_progress"], **more)


def report_run(kw: dict[str, Any], history: list[dict[str, Any]], t0: float, **extra: Any) -> None:
    """Export the best model where --export asks, then print the run's summary as one JSON line."""
    from .runs import export_shipped

    if kw["export_path"] is not None:
        export_shipped(kw["out_dir"], kw["export_path"], history)
    last = history[-1] if history else {}
    summary = {
        "out": str(kw["out_dir"]),
        "epochs": len(history),
        "seconds": round(time.time() - t0, 1),
        "loss": last.get("loss"),
        "val_dice": last.get("val_dice"),
    }
    click.echo(json.dumps({**summary, **extra}))


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


def _train_command(kind: str, label_table: str | None, init: Path | None, **kw: Any) -> None:
    from .checkpoint import CheckpointError
    from .settings import load_run_config

    prepare_process(kw)
    if (kw["data_dir"] is None) == (kw["n_phantoms"] is None):
        raise click.UsageError("give exactly one of --data DIR or --phantoms N")
    cfg = load_run_config(kw["config_path"])  # SettingsError: exit 1 with its message (ErrorGroup)
    from .distributed import cleanup_distributed, setup_distributed
    from .runs import CLASSES, convert_labels, phantom_split, run

    classes = list(CLASSES)
    lut = None
    if label_table is not None:
        from .data.labels import load_label_table

        table = load_label_table(label_table)
        classes = list(table.target)
        lut = table.lut(dict(enumerate(CLASSES)), max_id=len(CLASSES) - 1)
    cfg = with_options(cfg, kw, num_classes=len(classes))
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
            report_run(kw, history, t0)
    except (
        CheckpointError,
        FileNotFoundError,
        ValueError,
    ) as e:  # DataError, LabelTableError are ValueErrors
        raise click.ClickException(str(e)) from e
    finally:
        cleanup_distributed(info)


@click.command()
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


@click.command()
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
