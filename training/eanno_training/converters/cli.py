"""eanno-convert: public pancreas data sets -> AbdomenAtlas case folders in the 6-class map."""

from __future__ import annotations

import json
from pathlib import Path

import click
from eanno_contracts.cli import ErrorCommand, add_version

from .tables import TUMOUR_CLASSES, table_for


@click.command(cls=ErrorCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("fmt", type=click.Choice(["msd", "panorama"]), metavar="FORMAT")
@click.argument("root", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for the case folders.",
)
@click.option(
    "--tumour-class",
    type=click.Choice(sorted(TUMOUR_CLASSES)),
    default="pdac",
    show_default=True,
    help="MSD only: the lesion class of MSD's label 2 ('cancer', not subtyped).",
)
@click.option(
    "--table",
    type=click.Path(dir_okay=False, exists=True),
    help="A label table (YAML/JSON) replacing the built-in mapping.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the written case folders as JSON.")
def main(fmt: str, root: Path, out: Path, tumour_class: str, table: str | None, as_json: bool) -> None:
    """Convert FORMAT (msd = MSD Task07 Pancreas, panorama = PANORAMA) under ROOT to the 6-class map.

    \b
    msd:      imagesTr/X.nii.gz + labelsTr/X.nii.gz; 1 pancreas -> 1, 2 cancer -> --tumour-class.
    panorama: *_0000.nii.gz images + labels under a *label* folder (manual_labels wins over
              automatic_labels); 1 PDAC -> 3, 4 parenchyma -> 1, 5 duct -> 2, vessels and CBD -> 0.
    Each case becomes OUT/X/ct.nii.gz + combined_labels.nii.gz + segmentations/, on the input grid.
    """
    # ConvertError, LabelTableError: exit 1 with the message (ErrorCommand); anything else is a bug
    from .convert import convert_dataset  # here: the readers and writers load on use (fast --help)

    written = convert_dataset(root, fmt, out, table_for(fmt, tumour_class=tumour_class, table=table))
    if as_json:
        click.echo(json.dumps({"cases": [str(p) for p in written]}))
    else:
        click.echo(f"{len(written)} cases written to {out}")


add_version(main, "eanno-training")  # --version on the command and every subcommand


if __name__ == "__main__":  # pragma: no cover
    main()
