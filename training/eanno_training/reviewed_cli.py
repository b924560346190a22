"""The command-line side of `eanno-train finetune --from-reviewed DIR` (kept out of cli.py so it stays small)."""

from __future__ import annotations

import json
import logging
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
    from .runs import export_shipped
    from .settings import load_run_config, override

    logging.basicConfig(
        level=logging.INFO if kw["verbose"] else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    if kw["data_dir"] is not None or kw["n_phantoms"] is not None:
        raise click.UsageError("--from-reviewed takes its cases from DIR: leave out --data and --phantoms")
    if kw["resume"] is not None:
        raise click.UsageError(
            "--from-reviewed starts from --init (default: the shipped model), not --resume"
        )
    if kw["threads"]:
        import torch

        torch.set_num_threads(kw["threads"])
    cfg = load_run_config(kw["config_path"])  # SettingsError: exit 1 with its message (ErrorGroup)
    cfg = override(
        cfg,
        epochs=kw["epochs"],
        batch_size=kw["batch_size"],
        lr=kw["lr"],
        seed=kw["seed"],
        iters_per_epoch=kw["iters_per_epoch"],
        progress=not kw["no_progress"],
    )
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
                        **used,
                    }
                )
            )
    except (CheckpointError, FileNotFoundError, ValueError) as e:  # DataError is a ValueError
        raise click.ClickException(str(e)) from e
    finally:
        cleanup_distributed(info)
