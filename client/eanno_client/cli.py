"""`eanno-client`: annotate CT volumes on an EfficientAnno (Triton) server and write labels for review."""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from eanno_client.urls import DEFAULT_URL
from eanno_client.versions import version_option

if TYPE_CHECKING:  # heavy modules (numpy, nibabel, tritonclient) are imported where a command runs
    from eanno_client.batch import CaseResult
    from eanno_client.connection import Connection, ConnectionConfig
    from eanno_client.endpoints import EndpointPool

log = logging.getLogger("eanno_client")


def connection_options(fn: Any) -> Any:
    """The options every command that talks to the server takes."""
    options = [
        # eager: --version reads it to ask the server for its model
        click.option(
            "--url",
            "url",
            envvar="EANNO_URL",
            multiple=True,
            default=(DEFAULT_URL,),
            show_default=True,
            show_envvar=True,
            is_eager=True,
            metavar="HOST:PORT",
            help="Server gRPC address (also grpc://HOST:PORT; http://HOST:PORT is read as the gRPC "
            "address). Repeat it, or give a comma list in EANNO_URL, to spread cases over several "
            "servers.",
        ),
        click.option(
            "--root-cert",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="PEM root certificate to verify the server (turns on TLS).",
        ),
        click.option(
            "--client-cert",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="PEM client certificate for mutual TLS (with --client-key).",
        ),
        click.option(
            "--client-key",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="PEM private key of the client certificate.",
        ),
        click.option(
            "--header",
            "headers",
            multiple=True,
            metavar="'NAME: VALUE'",
            help="Extra request header, repeatable, e.g. --header 'Authorization: Bearer TOKEN'.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0.1),
            default=600.0,
            show_default=True,
            help="Seconds one request may take.",
        ),
        click.option(
            "--retries",
            type=click.IntRange(min=0),
            default=4,
            show_default=True,
            help="Retries (exponential backoff from 0.5 s) while the server is UNAVAILABLE; a 'server busy' "
            "refusal is retried apart (jittered back-off, up to 600 s).",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return version_option(fn)


def server_urls(values: str | tuple[str, ...]) -> list[str]:
    """The gRPC addresses from --url / EANNO_URL (notes on stderr); UsageError in plain words for a bad one."""
    from eanno_client.urls import parse_urls

    try:
        urls = parse_urls(values)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--url") from e
    for u in urls:
        for note in u.notes:
            click.echo(f"note: {note}", err=True)
    return [u.address for u in urls]


def make_configs(
    url: str | tuple[str, ...],
    root_cert: Path | None,
    client_cert: Path | None,
    client_key: Path | None,
    headers: tuple[str, ...],
    timeout: float,
    retries: int,
) -> list[ConnectionConfig]:
    """One ConnectionConfig per server address given (UsageError for a malformed address or header)."""
    first = make_config(DEFAULT_URL, root_cert, client_cert, client_key, headers, timeout, retries)
    return [replace(first, url=u) for u in server_urls(url)]


def ready_endpoints(configs: list[ConnectionConfig]) -> list[ConnectionConfig]:
    """The servers that are ready, checked at once (a few seconds at most); ClickException when none is."""
    from concurrent.futures import ThreadPoolExecutor

    from eanno_client.connection import ServerConnectionError
    from eanno_client.readiness import check_ready

    def check(c: ConnectionConfig) -> str | None:
        try:
            check_ready(c)
        except ServerConnectionError as e:
            return str(e)
        return None

    with ThreadPoolExecutor(max_workers=len(configs)) as pool:
        problems = list(pool.map(check, configs))
    ready = [c for c, p in zip(configs, problems, strict=True) if p is None]
    if not ready:
        raise click.ClickException("\n".join(p for p in problems if p))
    for p in problems:
        if p:
            click.echo(f"warning: left out: {p}", err=True)
    return ready


def make_config(
    url: str,
    root_cert: Path | None,
    client_cert: Path | None,
    client_key: Path | None,
    headers: tuple[str, ...],
    timeout: float,
    retries: int,
) -> ConnectionConfig:
    """A ConnectionConfig from the command-line options (UsageError for a malformed header)."""
    from eanno_client.connection import ConnectionConfig, parse_header

    parsed: dict[str, str] = {}
    for h in headers:
        try:
            name, value = parse_header(h)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--header") from e
        parsed[name] = value
    return ConnectionConfig(
        url=url,
        root_cert=root_cert,
        client_cert=client_cert,
        client_key=client_key,
        headers=parsed,
        timeout_s=timeout,
        retries=retries,
    )


def open_connection(config: ConnectionConfig) -> Connection:
    """A Connection, or a ClickException saying why it cannot be made."""
    from eanno_client.connection import Connection, ServerConnectionError

    try:
        return Connection(config)
    except ServerConnectionError as e:
        raise click.ClickException(str(e)) from e


def open_pool(configs: list[ConnectionConfig]) -> EndpointPool:
    """An EndpointPool over the configs, or a ClickException saying why a connection cannot be made."""
    from eanno_client.connection import ServerConnectionError
    from eanno_client.endpoints import EndpointPool

    pool = EndpointPool(configs)
    try:
        for e in pool.endpoints:
            pool.connection(e)  # certificates and key pairs are checked here, before any case is read
    except ServerConnectionError as e:
        pool.close()
        raise click.ClickException(str(e)) from e
    return pool


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option(
    "--url",
    "url",
    envvar="EANNO_URL",
    multiple=True,
    is_eager=True,
    metavar="HOST:PORT",
    help="With --version: also show the model that this server serves.",
)
@version_option
def main(verbose: int, url: tuple[str, ...]) -> None:
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
    url: tuple[str, ...],
    root_cert: Path | None,
    client_cert: Path | None,
    client_key: Path | None,
    headers: tuple[str, ...],
    timeout: float,
    retries: int,
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
    fails in seconds with exit 1. With several --url, each case goes to the least busy ready server and a
    case whose server stops answering is sent to another.
    Exit code 1 when any case failed (the others are finished first; see OUT/failures.jsonl).
    """
    from eanno_client.batch import BatchOptions, batch_summary, is_complete, run_batch
    from eanno_client.cases import expand_inputs
    from eanno_client.outputs import OutputOptions
    from eanno_client.progress import batch_progress
    from eanno_client.rank_cli import ranked, ranking_text
    from eanno_client.rules_option import RulesOptionError, read_rules_option
    from eanno_client.volume import InputError

    configs = make_configs(url, root_cert, client_cert, client_key, headers, timeout, retries)
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
            sys.exit(130)
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
        sys.exit(1)


def _line(r: CaseResult) -> str:
    if r.status == "failed":
        return f"FAILED {r.case} ({r.input}): {r.error}"
    if r.status == "skipped":
        return f"skipped {r.case}: outputs already present"
    note = f" [{r.note}]" if r.note else ""
    flags = "".join(f"\n  FLAG: {f}" for f in r.flags)  # reasons to distrust this case, from the report
    return f"{r.case}: {r.lesions} lesion(s), {r.candidates_removed} candidate(s) removed, {r.seconds:.1f} s{note}{flags}"


@main.command()
@connection_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def health(
    url: tuple[str, ...],
    root_cert: Path | None,
    client_cert: Path | None,
    client_key: Path | None,
    headers: tuple[str, ...],
    timeout: float,
    retries: int,
    as_json: bool,
) -> None:
    """Is the server live and ready; model versions; the operating threshold in use. Exit 1 if not ready."""
    from eanno_client.connection import ServerConnectionError
    from eanno_client.readiness import explain_error

    infos = []
    for config in make_configs(url, root_cert, client_cert, client_key, headers, min(timeout, 30.0), retries):
        with open_connection(config) as conn:
            try:
                infos.append(conn.health())
            except ServerConnectionError as e:
                raise click.ClickException(explain_error(config.url, e, config.tls)) from e
    if as_json:
        click.echo(json.dumps(infos[0] if len(infos) == 1 else infos, indent=2))
    for info in [] if as_json else infos:
        click.echo(
            f"server {info['url']}: live={info['live']} ready={info['ready']} "
            f"ensemble ready={info['ensemble_ready']}"
        )
        click.echo(
            f"model {info['model_name']} v{info['model_version']}: operating threshold (theta) "
            f"{info['theta']}, spacing {info['model_spacing']} mm"
        )
        for m in info["models"]:
            click.echo(f"  {m['name']} v{m['version'] or '-'}: {m['state']} {m.get('reason', '')}".rstrip())
    if not all(info["ready"] and info["ensemble_ready"] for info in infos):
        sys.exit(1)


@main.command()
@connection_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models(
    url: tuple[str, ...],
    root_cert: Path | None,
    client_cert: Path | None,
    client_key: Path | None,
    headers: tuple[str, ...],
    timeout: float,
    retries: int,
    as_json: bool,
) -> None:
    """List the server's models with version and state (the first --url)."""
    from eanno_client.connection import ServerConnectionError
    from eanno_client.readiness import explain_error

    config = make_configs(url, root_cert, client_cert, client_key, headers, min(timeout, 30.0), retries)[0]
    with open_connection(config) as conn:
        try:
            listed = conn.models()
        except ServerConnectionError as e:
            raise click.ClickException(explain_error(config.url, e, config.tls)) from e
    if as_json:
        click.echo(json.dumps(listed, indent=2))
        return
    for m in listed:
        click.echo(f"{m['name']}\tv{m['version'] or '-'}\t{m['state']}\t{m.get('reason', '')}".rstrip())


# Review commands live in their own module (client/README.md, "Review"); those modules import their heavy
# libraries inside the commands, so `--help` stays fast.
from eanno_client.loadtest_cli import loadtest_command  # noqa: E402
from eanno_client.rank_cli import rank  # noqa: E402
from eanno_client.review_cli import review, status  # noqa: E402

main.add_command(version_option(review))
main.add_command(version_option(status))
for _sub in status.commands.values():
    version_option(_sub)
main.add_command(version_option(rank))
main.add_command(loadtest_command(connection_options, make_configs))

if __name__ == "__main__":
    main()
