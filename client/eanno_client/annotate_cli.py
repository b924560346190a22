"""`eanno-client annotate`: the batch command (cases in, labels, report and viewer files out)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
from eanno_contracts.errors import ExitCode

from eanno_client.connection_cli import ConnectionArgs, connection_options, open_pool, ready_endpoints

if TYPE_CHECKING:  # numpy, nibabel and tritonclient are imported where the command runs
    from eanno_client.batch import CaseResult


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder; each case goes to OUT/<case>/.",
)
@connection_options
@click.option(
    "--series-uid",
    help="DICOM folders with several series: read this SeriesInstanceUID "
    "(default: the CT series with most slices).",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Lesion candidate threshold (default: the model's calibrated theta).",
)
@click.option(
    "--rules",
    "rules_json",
    metavar="FILE|JSON",
    help="Post-processing rules to override: a YAML or "
    "JSON file (e.g. site_rules.yaml) or an inline JSON object, e.g. '{\"connectivity\": 6}'. The "
    "server's own rules (eanno-export repository --rules) apply underneath; report.json names both.",
)
@click.option(
    "--concurrency",
    "-j",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Cases between reading and writing at once (the next case is read while one is in flight).",
)
@click.option("--continue", "resume", is_flag=True, help="Skip cases whose outputs are all present.")
@click.option(
    "--check/--no-check",
    default=True,
    show_default=True,
    help="Check each server (live, ready, the ensemble ready) before the first case; with "
    "--no-check a server that is down fails each case on its own (after --retries).",
)
@click.option(
    "--keep-phi",
    is_flag=True,
    help="Copy DICOM patient identifiers (PatientID, name, birth date) "
    "into report.json; by default no output, log or file name carries them.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Annotate inputs whose intensities do not look like CT in HU "
    "(MRI-like, PET-like); refused by default.",
)
@click.option(
    "--preview/--no-preview",
    default=None,
    help="Draw preview.png (default: on with --layout case, off with --layout flat).",
)
@click.option(
    "--layout",
    type=click.Choice(["case", "flat"]),
    default="case",
    show_default=True,
    help="case: OUT/<case>/labels.nii.gz and every other output; flat (nnU-Net, TotalSegmentator "
    "--ml style): OUT/<case>.nii.gz and OUT/<case>.json only, plus --preview / --dicom-seg if asked.",
)
@click.option("--dicom-seg", is_flag=True, help="For DICOM input, also write seg.dcm (needs highdicom).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with every case's result.")
@click.option(
    "--rank",
    "rank_after",
    is_flag=True,
    help="Then order this batch's unreviewed cases by how much a look is worth (see `eanno-client rank`).",
)
def annotate(
    inputs: tuple[Path, ...],
    out: Path,
    connection: ConnectionArgs,
    series_uid: str | None,
    threshold: float | None,
    rules_json: str | None,
    concurrency: int,
    resume: bool,
    check: bool,
    keep_phi: bool,
    force: bool,
    preview: bool | None,
    layout: str,
    dicom_seg: bool,
    as_json: bool,
    rank_after: bool,
) -> None:
    """Annotate INPUT... and write labels, report and viewer files to OUT/<case>/.

    INPUT is a NIfTI file (.nii, .nii.gz), an MHA/NRRD file, a DICOM series folder, a folder of such
    cases (or of AbdomenAtlas case folders holding ct.nii.gz), or a text file listing them one a line.
    nnU-Net inputs CASE_0000.nii.gz are case CASE (a _0001 file, a second channel, is refused).
    Before the first case, each server is checked (live, ready, the ensemble ready): nothing listening
    fails in seconds with exit 3 (a server that answers but is not ready: exit 1). With several --url,
    each case goes to the least busy ready server and a case whose server stops answering is sent to another.

    Exit codes: 0 all cases done or skipped; 4 some cases failed (the others are finished first; see
    OUT/failures.jsonl); 5 a case needs a package of the [all] extra (pydicom, SimpleITK, highdicom,
    matplotlib); 1 bad input before any case ran; 2 usage; 3 no server answers; 130 interrupted.
    """
    from eanno_client.batch import BatchOptions, batch_exit_code, batch_summary, is_complete, run_batch
    from eanno_client.cases import expand_inputs
    from eanno_client.outputs import OutputOptions
    from eanno_client.progress import batch_progress
    from eanno_client.rank_cli import ranked, ranking_text
    from eanno_client.rules_option import RulesOptionError, read_rules_option
    from eanno_client.volume import InputError

    configs = connection.configs()
    if rank_after and layout != "case":
        raise click.UsageError("--rank reads OUT/<case>/report.json: use it with --layout case")
    try:
        rules = read_rules_option(rules_json) if rules_json else None
    except RulesOptionError as e:
        raise click.BadParameter(str(e), param_hint="--rules") from e
    try:
        cases = expand_inputs(list(inputs))
    except InputError as e:
        raise click.UsageError(str(e)) from e
    show_preview = (layout == "case") if preview is None else preview
    options = BatchOptions(
        out=out,
        outputs=OutputOptions(preview=show_preview, dicom_seg=dicom_seg, keep_phi=keep_phi, layout=layout),
        series_uid=series_uid,
        threshold=threshold,
        rules=rules,
        concurrency=concurrency,
        resume=resume,
        force=force,
    )
    start = time.perf_counter()
    if check and not (resume and all(is_complete(c, options) for c in cases)):
        configs = ready_endpoints(configs)
    with open_pool(configs) as conn, batch_progress(len(cases), enabled=not as_json) as step:

        def report(r: CaseResult) -> None:
            step(None if as_json else _line(r), r.status == "failed")

        try:
            results = run_batch(conn, cases, options, on_result=report)
        except KeyboardInterrupt:
            # run_batch has let the cases in flight finish writing (atomically) and dropped the rest
            click.echo(
                f"\ninterrupted: finished cases are complete in {out}; no partial files were left. "
                "Run the same command with --continue to do the rest.",
                err=True,
            )
            sys.exit(ExitCode.INTERRUPTED)
    summary = batch_summary(results, time.perf_counter() - start, out)
    if len(configs) > 1:
        summary["endpoints"] = conn.shares()
    if rank_after:
        summary["ranking"] = ranked(out, [r.case for r in results if r.status != "failed"])
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(
            f"{summary['done']} done, {summary['skipped']} skipped, {summary['failed']} failed "
            f"in {summary['seconds']:.1f} s; outputs in {out}"
        )
        if rank_after:
            click.echo(ranking_text(summary["ranking"], out))
    if summary["failed"]:
        if not as_json:
            click.echo(f"failures logged in {summary['failure_log']}", err=True)
        sys.exit(batch_exit_code(results))


def _line(r: CaseResult) -> str:
    if r.status == "failed":
        return f"FAILED {r.case} ({r.input}): {r.error}"
    if r.status == "skipped":
        return f"skipped {r.case}: outputs already present"
    note = f" [{r.note}]" if r.note else ""
    flags = "".join(f"\n  FLAG: {f}" for f in r.flags)  # reasons to distrust this case, from the report
    return f"{r.case}: {r.lesions} lesion(s), {r.candidates_removed} candidate(s) removed, {r.seconds:.1f} s{note}{flags}"
