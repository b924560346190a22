"""`eanno-client loadtest`'s words: reading its options, and its table, CSV and progress bars."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # rich and numpy are imported when the command runs (fast --help)
    from eanno_client.loadstats import Record

SEGMENTER = "eanno_segmenter"


def concurrencies(text: str) -> tuple[int, ...]:
    """--concurrency: '1,2,4' or START:END:STEP (requests in flight)."""
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


def rates(text: str | None) -> tuple[float, ...]:
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


def spacing(text: str) -> tuple[float, float, float]:
    """--spacing: three voxel spacings in mm."""
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
def progress(enabled: bool, total: int | None) -> Iterator[Callable[[int], Callable[[Record], None] | None]]:
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


def step_line(step: dict[str, Any]) -> str:
    """One step of the table: throughput, latency, endpoint shares, the segmenter's batching."""
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
