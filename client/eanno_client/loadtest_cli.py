"""`eanno-client loadtest`: how many volumes per minute a server takes, and where its time goes."""

from __future__ import annotations

import json
from pathlib import Path

import click
from eanno_contracts.errors import ExitCode, MissingDependency

from eanno_client.connection_cli import ConnectionArgs, connection_options, ready_endpoints
from eanno_client.loadtest_text import (
    capacity_line,
    concurrencies,
    csv_text,
    progress,
    rates,
    spacing,
    step_line,
)


@click.command()
@connection_options
@click.option(
    "--cases",
    type=click.Path(exists=True, path_type=Path),
    help="Send these cases (a folder or list, as for annotate), round robin; read once, before the test.",
)
@click.option(
    "--synthetic",
    metavar="IxJxK",
    help="Send a generated int16 volume of this shape (default 512x512x300).",
)
@click.option(
    "--spacing",
    "voxel_spacing",
    default="0.8,0.8,1.5",
    show_default=True,
    help="Voxel spacing of --synthetic in mm.",
)
@click.option(
    "--concurrency",
    "-c",
    "concurrency_text",
    default="1,2,4,8",
    show_default=True,
    help="Closed loop: requests in flight, one step each, comma-separated (or START:END:STEP).",
)
@click.option(
    "--concurrency-range",
    "concurrency_range",
    metavar="START:END[:STEP]",
    help="As perf_analyzer spells it: 1:8:1 is 1, 2, ..., 8 (overrides --concurrency).",
)
@click.option(
    "--request-rate",
    "rate_text",
    metavar="R[,R...]|START:END:STEP",
    help="Open loop instead: requests arrive at R per second (Poisson), whatever the answers do; "
    "one step per rate. Latency runs from each arrival.",
)
@click.option(
    "--max-in-flight",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Open loop: requests in flight at most (later arrivals wait, and the wait counts).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Open loop: seed of the arrival times.")
@click.option(
    "--p95",
    "p95_target",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Report the most CTs per hour whose p95 latency stays within SECONDS.",
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write one CSV row per step to this file.",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Seconds per step at most (requests in flight then finish and count).",
)
@click.option("--requests", "-n", type=click.IntRange(min=1), help="Requests per step at most.")
@click.option(
    "--warmup",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Requests before the first step, not counted.",
)
@click.option(
    "--metrics-url",
    envvar="EANNO_METRICS_URL",
    show_envvar=True,
    help="Triton's metrics endpoint (default: http://HOST:8002/metrics on --url's host).",
)
@click.option("--no-metrics", is_flag=True, help="Do not read the server's metrics.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the full result as JSON to this file ('-': print it instead of the table).",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a PNG of throughput and p99 latency against concurrency (needs matplotlib).",
)
def loadtest(
    connection: ConnectionArgs,
    cases: Path | None,
    synthetic: str | None,
    voxel_spacing: str,
    concurrency_text: str,
    concurrency_range: str | None,
    rate_text: str | None,
    max_in_flight: int,
    seed: int,
    p95_target: float | None,
    csv_path: Path | None,
    duration: float,
    requests: int | None,
    warmup: int,
    metrics_url: str | None,
    no_metrics: bool,
    json_path: Path | None,
    plot: Path | None,
) -> None:
    """Load the server step by step and report throughput, latency and the server's own view.

    \b
    Closed loop: each step keeps C requests in flight (C clients) until --requests or --duration,
    whichever comes first, then waits for those in flight. Open loop (--request-rate): requests arrive
    at random (Poisson) times at the given rate, as scans arrive in a hospital. Per step: volumes/min,
    CTs/hour, voxels/s, latency p50/p90/p95/p99, errors, each endpoint's share (several --url), and from
    Triton's metrics the change over the step per model: queue and compute time per request, and
    executions against requests (the segmenter's dynamic batching).
    \b
    eanno-client loadtest --synthetic 512x512x300 -c 1,2,4 --requests 8 --json load.json --plot load.png
    eanno-client loadtest --concurrency-range 1:4:1 --p95 120 --csv load.csv
    eanno-client loadtest --request-rate 0.05,0.1,0.2 --duration 600 --p95 120
    eanno-client loadtest --url gpu1:8001 --url gpu2:8001 -c 2,4,8
    Exit code 4 when any request failed, 3 when no server answers (each is checked first, as annotate does).
    """
    from eanno_client.atomic import write_text_atomic
    from eanno_client.loadtest import (
        LoadOptions,
        Payload,
        case_payloads,
        parse_shape,
        run_load,
        synthetic_payload,
    )
    from eanno_client.server_metrics import metrics_url_for
    from eanno_client.volume import InputError

    if cases is not None and synthetic is not None:
        raise click.UsageError("give --cases or --synthetic, not both")
    steps = concurrencies(concurrency_range or concurrency_text)
    arrival_rates = rates(rate_text)
    try:
        payloads: list[Payload] = (
            case_payloads(cases)
            if cases is not None
            else [synthetic_payload(parse_shape(synthetic or "512x512x300"), spacing(voxel_spacing))]
        )
    except (InputError, ValueError) as e:
        raise click.UsageError(str(e)) from e
    configs = ready_endpoints(connection.configs())  # nothing listening: exit 3 in seconds
    # Triton's metrics are one server's: with several endpoints only an explicit --metrics-url is read
    murl = (
        None
        if no_metrics or (len(configs) > 1 and not metrics_url)
        else (metrics_url or metrics_url_for(configs[0].url))
    )
    quiet = json_path is not None and str(json_path) == "-"
    options = LoadOptions(
        steps,
        duration,
        requests,
        warmup,
        rates=arrival_rates,
        max_in_flight=max_in_flight,
        seed=seed,
        p95_target_s=p95_target,
    )
    with progress(not quiet, requests) as on_step:
        result = run_load(configs, payloads, options, murl, on_step)  # ServerConnectionError: exit 1
    if csv_path is not None:
        write_text_atomic(csv_path, csv_text(result))
    text = json.dumps(result, indent=2)
    if quiet:
        click.echo(text)
    else:
        for step in result["steps"]:
            click.echo(step_line(step))
        if result.get("capacity"):
            click.echo(capacity_line(result["capacity"]))
        if csv_path is not None:
            click.echo(f"CSV: {csv_path}")
        if json_path is not None:
            write_text_atomic(json_path, text + "\n")
            click.echo(f"JSON: {json_path}")
    if plot is not None:
        from eanno_client.loadplot import plot_load

        try:
            plot_load(result, plot)
        except ImportError as e:
            raise MissingDependency(f"--plot needs matplotlib (pip install 'eanno-client[all]'): {e}") from e
        if not quiet:
            click.echo(f"plot: {plot}")
    if any(s["errors"] for s in result["steps"]):
        raise SystemExit(ExitCode.PARTIAL)
