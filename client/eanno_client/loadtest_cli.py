"""`eanno-client loadtest`: how many volumes per minute a server takes, and where its time goes."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from eanno_client.atomic import write_text_atomic
from eanno_client.connection import ConnectionConfig, ServerConnectionError
from eanno_client.loadstats import Record
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

SEGMENTER = "eanno_segmenter"


def _concurrencies(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise click.BadParameter(f"{text!r}: give positive integers separated by commas, e.g. 1,2,4,8",
                                 param_hint="--concurrency")
    return values


def _spacing(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) <= 0:
        raise click.BadParameter(f"{text!r}: give three spacings in mm > 0, e.g. 0.8,0.8,1.5",
                                 param_hint="--spacing")
    return values  # type: ignore[return-value]


@contextlib.contextmanager
def _progress(enabled: bool, total: int | None) -> Iterator[Callable[[int], Callable[[Record], None] | None]]:
    """on_step(concurrency) -> a per-request callback advancing that step's bar (rich, on stderr)."""
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield lambda c: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[errors]} errors"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        def on_step(c: int) -> Callable[[Record], None]:
            task = progress.add_task(f"concurrency {c:>3}", total=total, errors=0)
            errors = [0]

            def done(r: Record) -> None:
                errors[0] += r.error is not None
                progress.update(task, advance=1, errors=errors[0])

            return done

        yield on_step


def _line(step: dict[str, Any]) -> str:
    lat = step["latency_ms"]
    fmt = lambda v: "-" if v is None else f"{v / 1e3:.2f}"  # noqa: E731
    text = (f"c={step['concurrency']:<3} {step['ok']:>4} ok {step['errors']:>3} err  "
            f"{step['volumes_per_min']:8.2f} vol/min  {step['voxels_per_s'] / 1e6:8.2f} Mvox/s  "
            f"p50 {fmt(lat['p50'])} p90 {fmt(lat['p90'])} p99 {fmt(lat['p99'])} s")
    seg = (step.get("server") or {}).get(SEGMENTER)
    if seg:
        text += (f"  | segmenter: {seg['inferences_per_execution']} patches/exec, queue {seg['queue_ms']} ms, "
                 f"compute {seg['compute_infer_ms']} ms per request")
    return text


def loadtest_command(connection_options: Callable[[Any], Any],
                     make_config: Callable[..., ConnectionConfig]) -> click.Command:
    """The `loadtest` command, built with eanno_client.cli's shared connection options (no import cycle)."""

    @click.command()
    @connection_options
    @click.option("--cases", type=click.Path(exists=True, path_type=Path),
                  help="Send these cases (a folder or list, as for annotate), round robin; read once, before the test.")
    @click.option("--synthetic", metavar="IxJxK", help="Send a generated int16 volume of this shape (default 512x512x300).")
    @click.option("--spacing", default="0.8,0.8,1.5", show_default=True, help="Voxel spacing of --synthetic in mm.")
    @click.option("--concurrency", "-c", "concurrency_text", default="1,2,4,8", show_default=True,
                  help="Requests in flight, one step each, comma-separated.")
    @click.option("--duration", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
                  help="Seconds per step at most (requests in flight then finish and count).")
    @click.option("--requests", "-n", type=click.IntRange(min=1), help="Requests per step at most.")
    @click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True,
                  help="Requests before the first step, not counted.")
    @click.option("--metrics-url", envvar="EANNO_METRICS_URL", show_envvar=True,
                  help="Triton's metrics endpoint (default: http://HOST:8002/metrics on --url's host).")
    @click.option("--no-metrics", is_flag=True, help="Do not read the server's metrics.")
    @click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
                  help="Write the full result as JSON to this file ('-': print it instead of the table).")
    @click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
                  help="Write a PNG of throughput and p99 latency against concurrency (needs matplotlib).")
    def loadtest(url: str, root_cert: Path | None, client_cert: Path | None, client_key: Path | None,
                 headers: tuple[str, ...], timeout: float, retries: int, cases: Path | None, synthetic: str | None,
                 spacing: str, concurrency_text: str, duration: float, requests: int | None, warmup: int,
                 metrics_url: str | None, no_metrics: bool, json_path: Path | None, plot: Path | None) -> None:
        """Load the server step by step and report throughput, latency and the server's own view.

        \b
        Each step keeps C requests in flight (C clients, closed loop) until --requests or --duration,
        whichever comes first, then waits for those in flight. Per step: volumes/min, voxels/s, latency
        p50/p90/p99, errors, and from Triton's metrics the change over the step per model: queue and
        compute time per request, and executions against requests (the segmenter's dynamic batching).
        \b
        eanno-client loadtest --synthetic 512x512x300 -c 1,2,4 --requests 8 --json load.json --plot load.png
        eanno-client loadtest --cases cases/ -c 1,2 --duration 120
        Exit code 1 when any request failed.
        """
        if cases is not None and synthetic is not None:
            raise click.UsageError("give --cases or --synthetic, not both")
        concurrencies = _concurrencies(concurrency_text)
        try:
            payloads: list[Payload] = (case_payloads(cases) if cases is not None else
                                       [synthetic_payload(parse_shape(synthetic or "512x512x300"), _spacing(spacing))])
        except (InputError, ValueError) as e:
            raise click.UsageError(str(e)) from e
        config = make_config(url, root_cert, client_cert, client_key, headers, timeout, retries)
        murl = None if no_metrics else (metrics_url or metrics_url_for(url))
        quiet = json_path is not None and str(json_path) == "-"
        with _progress(not quiet, requests) as on_step:
            try:
                result = run_load(config, payloads, LoadOptions(concurrencies, duration, requests, warmup), murl, on_step)
            except ServerConnectionError as e:
                raise click.ClickException(str(e)) from e
        text = json.dumps(result, indent=2)
        if quiet:
            click.echo(text)
        else:
            for step in result["steps"]:
                click.echo(_line(step))
            if json_path is not None:
                write_text_atomic(json_path, text + "\n")
                click.echo(f"JSON: {json_path}")
        if plot is not None:
            from eanno_client.loadplot import plot_load

            try:
                plot_load(result, plot)
            except ImportError as e:
                raise click.ClickException(f"--plot needs matplotlib (pip install 'eanno-client[all]'): {e}") from e
            if not quiet:
                click.echo(f"plot: {plot}")
        if any(s["errors"] for s in result["steps"]):
            raise SystemExit(1)

    return loadtest
