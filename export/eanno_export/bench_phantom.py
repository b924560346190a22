"""The serving benchmark's volume: a training-like phantom (eanno_training's generator) saved as .npy.

It lives in export (which may import training) so serving/benchmarks, which may not, can run it
as a subprocess: `python -m eanno_export.bench_phantom OUT.npy --seed 0 --shape 512 512 300 --spacing
0.8 0.8 1.0`. The CT is written in the canonical (RAS) array order the served path takes; one JSON line
on stdout says what it holds (pancreas voxels, lesions), so a benchmark can report what it exercised.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import numpy as np


@click.command()
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True, help="The phantom's seed (deterministic).")
@click.option("--shape", type=int, nargs=3, default=(512, 512, 300), show_default=True)
@click.option("--spacing", type=float, nargs=3, default=(0.8, 0.8, 1.0), show_default=True, help="mm")
@click.option("--lesions", type=int, default=2, show_default=True, help="Lesions drawn in the pancreas.")
def main(
    out: Path, seed: int, shape: tuple[int, int, int], spacing: tuple[float, float, float], lesions: int
) -> None:
    """Write the int16 CT of generate_phantom(seed) in RAS order to OUT (.npy) and print a summary."""
    from eanno_training.phantoms.generator import generate_phantom

    ph = generate_phantom(seed, shape=shape, spacing=spacing, n_lesions=lesions, orientation="RAS")
    tmp = out.with_name(f".{out.name}.tmp.npy")  # np.save appends .npy to other names
    np.save(tmp, np.ascontiguousarray(ph.ct))
    os.replace(tmp, out)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    click.echo(
        json.dumps(
            {
                "seed": seed,
                "shape": list(ph.ct.shape),
                "spacing": list(ph.spacing),
                "pancreas_ml": round(float(np.isin(ph.labels, (1, 2)).sum()) * voxel_ml, 2),
                "lesions": [les["class"] for les in ph.lesions],
                "body_fraction": round(float(np.mean(ph.ct > -500)), 4),
            }
        )
    )


if __name__ == "__main__":
    main()
