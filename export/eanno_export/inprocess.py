"""The in-process baseline of the serving benchmark: the torch predictor + refine on a volume file.

It lives in export (which may import training and postproc) so serving/benchmarks, which may
not, can run it as a subprocess: `python -m eanno_export.inprocess VOLUME.npy --spacing sx sy sz --out LABELS.npy`.
Prints one JSON line per timed run with the seconds spent (model load, imports and warm-up excluded).
With --rounds-from-stdin it runs one timed round per line read from standard input, so a benchmark
can interleave it with the served path on a noisy machine.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
import numpy as np


@click.command()
@click.argument("volume", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--spacing", type=float, nargs=3, required=True)
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="labels .npy (first round)"
)
@click.option("--batch-size", type=int, default=4, show_default=True)
@click.option(
    "--rounds-from-stdin", is_flag=True, help="Print {'ready': true}, then time one round per stdin line."
)
def main(
    volume: Path,
    spacing: tuple[float, float, float],
    checkpoint: Path | None,
    out: Path,
    batch_size: int,
    rounds_from_stdin: bool,
) -> None:
    """Predict + refine one int16 volume (canonical order) and time it."""
    import torch
    from eanno_postproc import refine
    from eanno_training.checkpoint import load_checkpoint
    from eanno_training.predictor import Predictor

    ckpt = load_checkpoint(checkpoint)
    predictor = Predictor(ckpt.build("cpu"), ckpt.meta, batch_size=batch_size)
    vol = np.load(volume)
    with torch.inference_mode():
        predictor.predict(vol[:64, :64, :32], spacing)  # warm-up: first-call allocations and thread pools

    saved: list[Path] = []  # where the first round wrote its labels (written once)

    def timed_round() -> dict[str, float]:
        t0 = time.perf_counter()
        probs = predictor.predict(vol, spacing)
        t1 = time.perf_counter()
        res = refine(vol, probs=probs, theta=float(ckpt.meta["theta"]), affine=np.diag([*spacing, 1.0]))
        t2 = time.perf_counter()
        if not saved:
            np.save(out, res.labels)
            saved.append(out)
        return {
            "predict_seconds": t1 - t0,
            "refine_seconds": t2 - t1,
            "seconds": t2 - t0,
            "threads": torch.get_num_threads(),
        }

    if not rounds_from_stdin:
        click.echo(json.dumps(timed_round()))
        return
    timed_round()  # an untimed full-size round, as the served path gets before it is timed
    click.echo(json.dumps({"ready": True}))
    for _ in sys.stdin:
        click.echo(json.dumps(timed_round()))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
