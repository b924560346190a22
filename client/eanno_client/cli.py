"""`eanno-client`: annotate CT volumes on an EfficientAnno (Triton) server and write labels for review."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import click

from eanno_client.batch import BatchOptions, CaseResult, batch_summary, run_batch
from eanno_client.cases import expand_inputs
from eanno_client.connection import (
    DEFAULT_URL,
    Connection,
    ConnectionConfig,
    ServerConnectionError,
    parse_header,
)
from eanno_client.loadtest_cli import loadtest_command
from eanno_client.outputs import OutputOptions
from eanno_client.progress import batch_progress
from eanno_client.rank_cli import rank, ranked, ranking_text
from eanno_client.review_cli import review, status
from eanno_client.rules_option import RulesOptionError, read_rules_option
from eanno_client.volume import InputError

log = logging.getLogger("eanno_client")


def connection_options(fn: Any) -> Any:
    """The options every command that talks to the server takes."""
    options = [
        click.option("--url", envvar="EANNO_URL", default=DEFAULT_URL, show_default=True, show_envvar=True,
                     help="Server gRPC address HOST:PORT."),
        click.option("--root-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="PEM root certificate to verify the server (turns on TLS)."),
        click.option("--client-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="PEM client certificate for mutual TLS (with --client-key)."),
        click.option("--client-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="PEM private key of the client certificate."),
        click.option("--header", "headers", multiple=True, metavar="'NAME: VALUE'",
                     help="Extra request header, repeatable, e.g. --header 'Authorization: Bearer TOKEN'."),
        click.option("--timeout", type=click.FloatRange(min=0.1), default=600.0, show_default=True,
                     help="Seconds one request may take."),
        click.option("--retries", type=click.IntRange(min=0), default=4, show_default=True,
                     help="Retries (exponential backoff from 0.5 s) while the server is UNAVAILABLE."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def make_config(url: str, root_cert: Path | None, client_cert: Path | None, client_key: Path | None,
                headers: tuple[str, ...], timeout: float, retries: int) -> ConnectionConfig:
    """A ConnectionConfig from the command-line options (UsageError for a malformed header)."""
    parsed: dict[str, str] = {}
    for h in headers:
        try:
            name, value = parse_header(h)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--header") from e
        parsed[name] = value
    return ConnectionConfig(url=url, root_cert=root_cert, client_cert=client_cert, client_key=client_key,
                            headers=parsed, timeout_s=timeout, retries=retries)


def open_connection(config: ConnectionConfig) -> Connection:
    """A Connection, or a ClickException saying why it cannot be made."""
    try:
        return Connection(config)
    except ServerConnectionError as e:
        raise click.ClickException(str(e)) from e


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Annotate pancreatic lesions in CT with an EfficientAnno server.

    \b
    eanno-client health                      is the server up, which model, which threshold
    eanno-client annotate ct.nii.gz --out labels/
    eanno-client annotate dicom_series/ cases.txt --out labels/ --continue
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder; each case goes to OUT/<case>/.")
@connection_options
@click.option("--series-uid", help="DICOM folders with several series: read this SeriesInstanceUID "
              "(default: the CT series with most slices).")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Lesion candidate threshold (default: the model's calibrated theta).")
@click.option("--rules", "rules_json", metavar="FILE|JSON", help="Post-processing rules to override: a YAML or "
              "JSON file (e.g. site_rules.yaml) or an inline JSON object, e.g. '{\"connectivity\": 6}'. The "
              "server's own rules (eanno-export repository --rules) apply underneath; report.json names both.")
@click.option("--concurrency", "-j", type=click.IntRange(min=1), default=2, show_default=True,
              help="Cases between reading and writing at once (the next case is read while one is in flight).")
@click.option("--continue", "resume", is_flag=True, help="Skip cases whose outputs are all present.")
@click.option("--keep-phi", is_flag=True, help="Copy DICOM patient identifiers (PatientID, name, birth date) "
              "into report.json; by default no output, log or file name carries them.")
@click.option("--force", is_flag=True, help="Annotate inputs whose intensities do not look like CT in HU "
              "(MRI-like, PET-like); refused by default.")
@click.option("--no-preview", is_flag=True, help="Do not draw preview.png.")
@click.option("--dicom-seg", is_flag=True, help="For DICOM input, also write seg.dcm (needs highdicom).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with every case's result.")
@click.option("--rank", "rank_after", is_flag=True, help="Then order this batch's unreviewed cases by how much a "
              "look is worth (see `eanno-client rank`).")
def annotate(inputs: tuple[Path, ...], out: Path, url: str, root_cert: Path | None, client_cert: Path | None,
             client_key: Path | None, headers: tuple[str, ...], timeout: float, retries: int,
             series_uid: str | None, threshold: float | None, rules_json: str | None, concurrency: int,
             resume: bool, keep_phi: bool, force: bool, no_preview: bool, dicom_seg: bool, as_json: bool,
             rank_after: bool) -> None:
    """Annotate INPUT... and write labels, report and viewer files to OUT/<case>/.

    INPUT is a NIfTI file (.nii, .nii.gz), an MHA/NRRD file, a DICOM series folder, a folder of such
    cases (or of AbdomenAtlas case folders holding ct.nii.gz), or a text file listing them one a line.
    Exit code 1 when any case failed (the others are finished first; see OUT/failures.jsonl).
    """
    config = make_config(url, root_cert, client_cert, client_key, headers, timeout, retries)
    try:
        rules = read_rules_option(rules_json) if rules_json else None
    except RulesOptionError as e:
        raise click.BadParameter(str(e), param_hint="--rules") from e
    try:
        cases = expand_inputs(list(inputs))
    except InputError as e:
        raise click.UsageError(str(e)) from e
    options = BatchOptions(out=out, outputs=OutputOptions(preview=not no_preview, dicom_seg=dicom_seg, keep_phi=keep_phi),
                           series_uid=series_uid, threshold=threshold, rules=rules, concurrency=concurrency,
                           resume=resume, force=force)
    start = time.perf_counter()
    with open_connection(config) as conn, batch_progress(len(cases), enabled=not as_json) as step:
        def report(r: CaseResult) -> None:
            step(None if as_json else _line(r), r.status == "failed")

        try:
            results = run_batch(conn, cases, options, on_result=report)
        except KeyboardInterrupt:
            # run_batch has let the cases in flight finish writing (atomically) and dropped the rest
            click.echo(f"\ninterrupted: finished cases are complete in {out}; no partial files were left. "
                       "Run the same command with --continue to do the rest.", err=True)
            sys.exit(130)
    summary = batch_summary(results, time.perf_counter() - start, out)
    if rank_after:
        summary["ranking"] = ranked(out, [r.case for r in results if r.status != "failed"])
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(f"{summary['done']} done, {summary['skipped']} skipped, {summary['failed']} failed "
                   f"in {summary['seconds']:.1f} s; outputs in {out}")
        if rank_after:
            click.echo(ranking_text(summary["ranking"], out))
    if summary["failed"]:
        if not as_json:
            click.echo(f"failures logged in {summary['failure_log']}", err=True)
        sys.exit(1)


def _line(r: CaseResult) -> str:
    if r.status == "failed":
        return f"FAILED {r.case} ({r.input}): {r.error}"
    if r.status == "skipped":
        return f"skipped {r.case}: outputs already present"
    note = f" [{r.note}]" if r.note else ""
    return f"{r.case}: {r.lesions} lesion(s), {r.candidates_removed} candidate(s) removed, {r.seconds:.1f} s{note}"


@main.command()
@connection_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def health(url: str, root_cert: Path | None, client_cert: Path | None, client_key: Path | None,
           headers: tuple[str, ...], timeout: float, retries: int, as_json: bool) -> None:
    """Is the server live and ready; model versions; the operating threshold in use. Exit 1 if not ready."""
    config = make_config(url, root_cert, client_cert, client_key, headers, min(timeout, 30.0), retries)
    with open_connection(config) as conn:
        try:
            info = conn.health()
        except ServerConnectionError as e:
            raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps(info, indent=2))
    else:
        click.echo(f"server {info['url']}: live={info['live']} ready={info['ready']} "
                   f"ensemble ready={info['ensemble_ready']}")
        click.echo(f"model {info['model_name']} v{info['model_version']}: operating threshold (theta) "
                   f"{info['theta']}, spacing {info['model_spacing']} mm")
        for m in info["models"]:
            click.echo(f"  {m['name']} v{m['version'] or '-'}: {m['state']} {m.get('reason', '')}".rstrip())
    if not (info["ready"] and info["ensemble_ready"]):
        sys.exit(1)


@main.command()
@connection_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models(url: str, root_cert: Path | None, client_cert: Path | None, client_key: Path | None,
           headers: tuple[str, ...], timeout: float, retries: int, as_json: bool) -> None:
    """List the server's models with version and state."""
    config = make_config(url, root_cert, client_cert, client_key, headers, min(timeout, 30.0), retries)
    with open_connection(config) as conn:
        try:
            listed = conn.models()
        except ServerConnectionError as e:
            raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps(listed, indent=2))
        return
    for m in listed:
        click.echo(f"{m['name']}\tv{m['version'] or '-'}\t{m['state']}\t{m.get('reason', '')}".rstrip())


# Review commands live in their own module (client/README.md, "Review").
main.add_command(review)
main.add_command(status)
main.add_command(rank)
main.add_command(loadtest_command(connection_options, make_config))

if __name__ == "__main__":
    main()
