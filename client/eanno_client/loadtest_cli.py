"""`eanno-client loadtest`: how many volumes per minute a server takes, and where its time goes."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # numpy, tritonclient and rich are imported when the command runs (fast --help)
    from eanno_client.connection import ConnectionConfig
    from eanno_client.loadstats import Record

SEGMENTER = "eanno_segmenter"


def _concurrencies(text: str) -> tuple[int, ...]:
    if ":" in text:  # perf_analyzer's START:END:STEP
        from eanno_client.loadtest import parse_range

        try:
            return parse_range(text, int)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--concurrency-range") from e
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise click.BadParameter(
            f"{text!r}: give positive integers separated by commas, e.g. 1,2,4,8", param_hint="--concurrency"
        )
    return values


def _rates(text: str | None) -> tuple[float, ...]:
    """--request-rate: '0.5,1,2' or START:END:STEP (requests per second)."""
    if not text:
        return ()
    from eanno_client.loadtest import parse_range

    try:
        values = (
            parse_range(text, float) if ":" in text else tuple(float(v) for v in text.split(",") if v.strip())
        )
    except ValueError as e:
        raise click.BadParameter(
            f"{text!r}: give requests per second, e.g. 0.5,1,2 or 0.5:2:0.5 ({e})",
            param_hint="--request-rate",
        ) from e
    if not values or min(values) <= 0:
        raise click.BadParameter(f"{text!r}: rates must be > 0", param_hint="--request-rate")
    return values


def _spacing(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) <= 0:
        raise click.BadParameter(
            f"{text!r}: give three spacings in mm > 0, e.g. 0.8,0.8,1.5", param_hint="--spacing"
        )
    return values  # type: ignore[return-value]


@contextlib.contextmanager
def _progress(enabled: bool, total: int | None) -> Iterator[Callable[[int], Callable[[Record], None] | None]]:
    """on_step(concurrency) -> a per-request callback advancing that step's bar (rich, on stderr)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield lambda c: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[errors]} errors"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:

        def on_step(c: float) -> Callable[[Record], None]:
            label = f"concurrency {c:>3}" if isinstance(c, int) else f"rate {c:g}/s"
            task = progress.add_task(label, total=total, errors=0)
            errors = [0]

            def done(r: Record) -> None:
                errors[0] += r.error is not None
                progress.update(task, advance=1, errors=errors[0])

            return done

        yield on_step


def _line(step: dict[str, Any]) -> str:
    lat = step["latency_ms"]
    fmt = lambda v: "-" if v is None else f"{v / 1e3:.2f}"  # noqa: E731
    head = (
        f"c={step['concurrency']:<3}" if step["request_rate"] is None else f"rate={step['request_rate']:g}/s"
    )
    text = (
        f"{head} {step['ok']:>4} ok {step['errors']:>3} err  "
        f"{step['volumes_per_min']:8.2f} vol/min  {step['cts_per_hour']:8.1f} CTs/h  "
        f"{step['voxels_per_s'] / 1e6:8.2f} Mvox/s  "
        f"p50 {fmt(lat['p50'])} p95 {fmt(lat['p95'])} p99 {fmt(lat['p99'])} s"
    )
    if len(step.get("endpoints", {})) > 1:
        text += "  | " + ", ".join(f"{u} {e['share']:.0%}" for u, e in step["endpoints"].items())
    seg = (step.get("server") or {}).get(SEGMENTER)
    if seg:
        text += (
            f"  | segmenter: {seg['inferences_per_execution']} patches/exec, queue {seg['queue_ms']} ms, "
            f"compute {seg['compute_infer_ms']} ms per request"
        )
    return text


CSV_COLUMNS = (
    "mode",
    "concurrency",
    "request_rate",
    "requests",
    "ok",
    "errors",
    "seconds",
    "volumes_per_s",
    "cts_per_hour",
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "mean_ms",
    "endpoints",
)


def csv_text(result: dict[str, Any]) -> str:
    """One CSV row per step (latencies in ms; endpoints as 'url=share;...')."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for s in result["steps"]:
        lat = s["latency_ms"]
        w.writerow(
            [
                s["mode"],
                s["concurrency"] or "",
                s["request_rate"] or "",
                s["requests"],
                s["ok"],
                s["errors"],
                s["seconds"],
                s["volumes_per_s"],
                s["cts_per_hour"],
                lat["p50"],
                lat["p90"],
                lat["p95"],
                lat["p99"],
                lat["mean"],
                ";".join(f"{u}={e['share']}" for u, e in s["endpoints"].items()),
            ]
        )
    return buf.getvalue()


def capacity_line(cap: dict[str, Any]) -> str:
    """'N CTs/hour with p95 <= T s (at c=2)' or why none."""
    if cap["step"] is None:
        return f"no step kept p95 latency within {cap['p95_target_s']:g} s without errors"
    where = (
        f"c={cap['step']['concurrency']}"
        if cap["step"]["mode"] == "closed"
        else f"{cap['step']['request_rate']:g} requests/s"
    )
    return f"{cap['cts_per_hour']:.1f} CTs/hour with p95 {cap['p95_s']:.2f} s <= {cap['p95_target_s']:g} s (at {where})"


def loadtest_command(
    connection_options: Callable[[Any], Any], make_configs: Callable[..., list[ConnectionConfig]]
) -> click.Command:
    """The `loadtest` command, built with eanno_client.cli's shared connection options (no import cycle)."""

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
        "--spacing", default="0.8,0.8,1.5", show_default=True, help="Voxel spacing of --synthetic in mm."
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
    @click.option(
        "--seed", type=int, default=0, show_default=True, help="Open loop: seed of the arrival times."
    )
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
        url: tuple[str, ...],
        root_cert: Path | None,
        client_cert: Path | None,
        client_key: Path | None,
        headers: tuple[str, ...],
        timeout: float,
        retries: int,
        cases: Path | None,
        synthetic: str | None,
        spacing: str,
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
        Exit code 1 when any request failed.
        """
        from eanno_client.atomic import write_text_atomic
        from eanno_client.connection import ServerConnectionError
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
        concurrencies = _concurrencies(concurrency_range or concurrency_text)
        rates = _rates(rate_text)
        try:
            payloads: list[Payload] = (
                case_payloads(cases)
                if cases is not None
                else [synthetic_payload(parse_shape(synthetic or "512x512x300"), _spacing(spacing))]
            )
        except (InputError, ValueError) as e:
            raise click.UsageError(str(e)) from e
        configs = make_configs(url, root_cert, client_cert, client_key, headers, timeout, retries)
        # Triton's metrics are one server's: with several endpoints only an explicit --metrics-url is read
        murl = (
            None
            if no_metrics or (len(configs) > 1 and not metrics_url)
            else (metrics_url or metrics_url_for(configs[0].url))
        )
        quiet = json_path is not None and str(json_path) == "-"
        options = LoadOptions(
            concurrencies,
            duration,
            requests,
            warmup,
            rates=rates,
            max_in_flight=max_in_flight,
            seed=seed,
            p95_target_s=p95_target,
        )
        with _progress(not quiet, requests) as on_step:
            try:
                result = run_load(configs, payloads, options, murl, on_step)
            except ServerConnectionError as e:
                raise click.ClickException(str(e)) from e
        if csv_path is not None:
            write_text_atomic(csv_path, csv_text(result))
        text = json.dumps(result, indent=2)
        if quiet:
            click.echo(text)
        else:
            for step in result["steps"]:
                click.echo(_line(step))
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
                raise click.ClickException(
                    f"--plot needs matplotlib (pip install 'eanno-client[all]'): {e}"
                ) from e
            if not quiet:
                click.echo(f"plot: {plot}")
        if any(s["errors"] for s in result["steps"]):
            raise SystemExit(1)

    return loadtest
