"""The command-line side of `eanno-train finetune --from-reviewed DIR` (kept out of cli.py so it stays small)."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Any

import click


def finetune_from_reviewed(root: Path, init: Path | None, **kw: Any) -> None:
    """Run finetune_reviewed with the shared training options; ClickException for bad data."""
    from .checkpoint import CheckpointError
    from .distributed import cleanup_distributed, setup_distributed
    from .reviewed import finetune_reviewed
    from .settings import load_run_config
    from .train_cli import prepare_process, report_run, with_options

    if kw["data_dir"] is not None or kw["n_phantoms"] is not None:
        raise click.UsageError("--from-reviewed takes its cases from DIR: leave out --data and --phantoms")
    if kw["resume"] is not None:
        raise click.UsageError(
            "--from-reviewed starts from --init (default: the shipped model), not --resume"
        )
    prepare_process(kw)
    cfg = load_run_config(kw["config_path"])  # SettingsError: exit 1 with its message (ErrorGroup)
    cfg = with_options(cfg, kw)
    info = setup_distributed(kw["device"])
    t0 = time.time()
    provenance = {
        "command": "eanno-train " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "kind": "finetune-reviewed",
        "seed": kw["seed"],
        "epochs": cfg.train.epochs,
        "iters_per_epoch": cfg.iters_per_epoch,
        "batch_size": cfg.train.batch_size,
        "lr": cfg.train.lr,
        "world_size": info.world_size,
    }
    try:
        history, used = finetune_reviewed(root, init, cfg, kw["out_dir"], info, provenance)
        if info.is_main:
            report_run(kw, history, t0, **used)
    except (CheckpointError, FileNotFoundError, ValueError) as e:  # DataError is a ValueError
        raise click.ClickException(str(e)) from e
    finally:
        cleanup_distributed(info)
