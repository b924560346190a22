"""`eanno-client review` (what the radiologist changed) and `eanno-client status` (who reviewed what)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import click

# Light imports only: the comparison (scipy, nibabel) is imported where a command runs, so --help is fast.
from eanno_client.review_settings import ReviewSettings

_DEFAULTS = ReviewSettings()


@click.command()
@click.argument("model_labels", type=click.Path(exists=True, path_type=Path))
@click.argument("revised_labels", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--removed",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Removed-candidates map (default: removed.nii.gz beside a model labels.nii.gz).",
)
@click.option(
    "--tolerance",
    "tolerance_mm",
    type=click.FloatRange(min=0),
    default=_DEFAULTS.tolerance_mm,
    show_default=True,
    help="Surface Dice tolerance in mm.",
)
@click.option(
    "--resize",
    "resize_fraction",
    type=click.FloatRange(min=0),
    default=_DEFAULTS.resize_fraction,
    show_default=True,
    help="A lesion whose volume changed by more than this fraction is 'resized'.",
)
@click.option(
    "--reshape",
    "reshape_below",
    type=click.FloatRange(0, 1),
    default=_DEFAULTS.reshape_below,
    show_default=True,
    help="A lesion whose surface Dice is below this is 'reshaped'.",
)
@click.option(
    "--connectivity",
    type=click.Choice(["6", "18", "26"]),
    default=str(_DEFAULTS.connectivity),
    show_default=True,
    help="Voxel adjacency of lesion components.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: every case and the summary.")
def review(
    model_labels: Path,
    revised_labels: Path,
    removed: Path | None,
    tolerance_mm: float,
    resize_fraction: float,
    reshape_below: float,
    connectivity: str,
    as_json: bool,
) -> None:
    """Compare the model's labels with a radiologist's revision: what changed, and what it says of the model.

    \b
    MODEL_LABELS and REVISED_LABELS are two label files on the same grid, or two folders:
      MODEL: an `annotate` output folder (CASE/labels.nii.gz) or a folder of CASE.nii.gz files;
      REVISED: CASE/revised.nii.gz, CASE/labels_revised.nii.gz, CASE/labels.nii.gz or CASE.nii.gz
      (REVISED may be the same folder as MODEL when revisions are saved as CASE/revised.nii.gz).
    Per lesion (labels 3-5 as one mask, so a class change is one lesion): added, deleted, resized,
    reshaped (surface Dice at --tolerance mm), reclassified. Model errors: missed lesion, a removed
    candidate the radiologist restored (read from removed.nii.gz), false positive kept, boundary.
    """
    from eanno_client.review_io import batch_summary, find_pairs, format_table, review_pair

    settings = ReviewSettings(
        tolerance_mm=tolerance_mm,
        resize_fraction=resize_fraction,
        reshape_below=reshape_below,
        connectivity=int(connectivity),
    )
    # an InputError here is exit 1 with its message (eanno-client's ErrorGroup)
    pairs = find_pairs(model_labels, revised_labels, removed)
    results = [review_pair(p, settings) for p in pairs]
    summary = batch_summary(results)
    if as_json:
        click.echo(json.dumps({"cases": results, "summary": summary}, indent=2))
        return
    click.echo(format_table(results, summary))
    errs = summary["errors"]
    click.echo(
        f"model errors: {errs['missed']} missed, {errs['restored']} wrongly removed by post-processing "
        f"(restored), {errs['false_positive_kept']} false positive(s) kept, {errs['reclassified']} "
        f"reclassified, {errs['boundary']} boundary; {errs['removed_confirmed']} removal(s) confirmed"
    )


class _DefaultShow(click.Group):
    """`status DIR` means `status show DIR`; `status set CASE ...` records a decision."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help", "--version"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultShow)
def status() -> None:
    """Review progress: `status DIR` shows the team's progress, `status set CASE` records a decision.

    \b
    eanno-client status set labels/case01 --approved --reviewer alice
    eanno-client status set labels/case02 --needs-changes --comment 'cyst missed at the tail'
    eanno-client status labels/            # counts, who reviewed what, what is pending
    The decision is kept in CASE/review.json (earlier decisions under "history"); no server needed.
    """


@status.command("set")
@click.argument("case", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--approved", "state", flag_value="approved", help="The labels are right as they are now.")
@click.option("--needs-changes", "state", flag_value="needs_changes", help="The labels need more work.")
@click.option("--comment", default="", help="Free text kept with the decision.")
@click.option(
    "--reviewer",
    envvar="EANNO_REVIEWER",
    show_envvar=True,
    default=getpass.getuser,
    show_default="the login name",
    help="Who decided.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the record written.")
def status_set(case: Path, state: str | None, comment: str, reviewer: str, as_json: bool) -> None:
    """Record CASE's review decision in CASE/review.json (written atomically)."""
    from eanno_client.review_status import set_status

    if state is None:
        raise click.UsageError("give --approved or --needs-changes")
    try:
        record = set_status(case, state, reviewer, comment)
    except ValueError as e:  # InputError, and set_status's plain ValueError for a state it does not know
        raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps(record, indent=2))
    else:
        click.echo(f"{record['case']}: {state.replace('_', ' ')} by {record['reviewer']} at {record['time']}")


@status.command("show")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status_show(folder: Path, as_json: bool) -> None:
    """The team's progress over the case folders in FOLDER."""
    from eanno_client.review_status import format_progress, progress

    p = progress(folder)  # InputError: exit 1 (eanno-client's ErrorGroup)
    click.echo(json.dumps(p, indent=2) if as_json else format_progress(p))
