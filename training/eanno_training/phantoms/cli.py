"""`phantoms` command (click): write a deterministic set of phantoms in the AbdomenAtlas layout.

The training CLI adds it as `eanno-train phantoms`; `python -m eanno_training.phantoms` runs it alone.
"""

from __future__ import annotations

import json
import logging

import click


def _triple(kind: type):
    """A click callback parsing "a,b,c" (or one value for all three axes)."""

    def parse(ctx: click.Context, param: click.Parameter, value: str | None):
        if value is None:
            return None
        try:
            parts = [kind(v) for v in value.split(",")]
        except ValueError as e:
            raise click.BadParameter(f"expected numbers like 1,2,3, got {value!r}") from e
        if len(parts) == 1:
            parts *= 3
        if len(parts) != 3 or any(p <= 0 for p in parts):
            raise click.BadParameter(f"expected one or three positive numbers, got {value!r}")
        return tuple(parts)

    return parse


@click.command("phantoms")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder to write phantom_0000/ ... and phantoms.json into.",
)
@click.option(
    "--n", "n", default=10, show_default=True, type=click.IntRange(min=1), help="Number of phantoms."
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="Seed of the set; case i uses a seed derived from it.",
)
@click.option(
    "--shape",
    callback=_triple(int),
    help="Voxels per stored axis, e.g. 512,512,300 (default: a ~230x195x140 mm field of view).",
)
@click.option(
    "--spacing",
    callback=_triple(float),
    help="mm per stored axis, e.g. 0.8,0.8,2.5 (default: drawn per case).",
)
@click.option("--overwrite", is_flag=True, help="Replace case folders that already exist.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the written cases as JSON instead of a summary line."
)
def phantoms_command(out: str, n: int, seed: int, shape, spacing, overwrite: bool, as_json: bool) -> None:
    """Write N synthetic abdominal CTs (ct.nii.gz, segmentations/, combined_labels.nii.gz, phantom.json).

    The same --seed and --n always give the same files. Labels: 0 background, 1 pancreas, 2 duct,
    3 PDAC, 4 cyst, 5 PNET. Each case has 0-3 lesions, hard negatives beside the pancreas, anisotropic
    spacing and one of the 48 storage orientations. Example:

        eanno-train phantoms --out data/phantoms --n 50 --seed 1
    """
    try:
        from .writer import generate_phantom_set  # here: the generator needs scipy (fast --help)

        cases = generate_phantom_set(
            out, n, seed, shape=shape, spacing=spacing, overwrite=overwrite, progress=not as_json
        )
    except (FileExistsError, ValueError, OSError) as e:
        raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps({"out": str(out), "seed": seed, "cases": [str(c) for c in cases]}))
    else:
        click.echo(f"wrote {len(cases)} phantoms to {out} (index: {out}/phantoms.json)")


def main() -> None:
    """Entry of `python -m eanno_training.phantoms`."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    phantoms_command()
