"""A load test of the annotate path, step by step: closed loop (N clients each keep one request in flight)
or open loop (requests arrive at a given rate, Poisson: the way a hospital's scans arrive).

Each step (one concurrency) ends by itself at whichever bound comes first, its request count or its
duration; requests in flight then finish and are counted. Triton's metrics are read before and after
every step, so the server's own view (queue, compute, batching) covers exactly that step.
"""

from __future__ import annotations

import logging
import platform
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from eanno_client.cases import expand_inputs
from eanno_client.connection import ENSEMBLE, ConnectionConfig, ServerConnectionError
from eanno_client.endpoints import EndpointPool
from eanno_client.loadstats import Record, capacity, summarise
from eanno_client.orientation import to_canonical
from eanno_client.readers import read_volume
from eanno_client.server_metrics import MetricsError, Snapshot, delta, fetch_metrics, step_view
from eanno_client.volume import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Payload:
    """One request's inputs, canonical order (what Connection.annotate sends)."""

    name: str
    volume: np.ndarray
    spacing: np.ndarray
    affine: np.ndarray

    @property
    def voxels(self) -> int:
        """Voxels in the volume."""
        return int(self.volume.size)


@dataclass(frozen=True)
class LoadOptions:
    """What a load test runs: concurrencies in order, and each step's bounds."""

    concurrencies: tuple[int, ...]
    duration_s: float = 60.0
    requests: int | None = None  # per step; None: the duration alone bounds it
    warmup: int = 1  # requests before the first step, not counted (first-call costs of the server)
    rates: tuple[float, ...] = ()  # open loop: requests per second, one step each (instead of concurrencies)
    max_in_flight: int = (
        64  # open loop: requests in flight at most; later arrivals wait (and their wait counts)
    )
    seed: int = 0  # open loop: the arrival times
    p95_target_s: float | None = None  # report the most CTs/hour whose p95 latency is within this


def parse_range(text: str, kind: type = int) -> tuple:
    """perf_analyzer's 'start:end[:step]' (end included) -> the values; ValueError naming the text."""
    parts = text.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        start, end = kind(parts[0]), kind(parts[1])
        step = kind(parts[2]) if len(parts) == 3 else kind(1)
    except ValueError:
        raise ValueError(f"{text!r} is not START:END[:STEP] (e.g. 1:8:1 for 1, 2, ..., 8)") from None
    if start <= 0 or end < start or step <= 0:
        raise ValueError(f"{text!r}: need 0 < START <= END and STEP > 0")
    values = []
    v = start
    while v <= end + (1e-9 if kind is float else 0):
        values.append(round(v, 6) if kind is float else v)
        v += step
    return tuple(values)


def parse_shape(text: str) -> tuple[int, int, int]:
    """'512x512x300' -> (512, 512, 300); ValueError naming the text otherwise."""
    try:
        shape = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"{text!r} is not a shape like 512x512x300 (three positive integers)")
    return shape  # type: ignore[return-value]


def synthetic_payload(shape: tuple[int, int, int], spacing: Sequence[float], seed: int = 0) -> Payload:
    """A deterministic abdomen-like int16 volume: air, an elliptic soft-tissue body with noise, three spheres."""
    rng = np.random.default_rng(seed)
    x, y = np.ogrid[: shape[0], : shape[1]]
    body = ((x - shape[0] / 2) / (0.45 * shape[0])) ** 2 + ((y - shape[1] / 2) / (0.35 * shape[1])) ** 2 <= 1
    ct = np.where(body[..., None], np.int16(60), np.int16(-1000)).repeat(shape[2], axis=2)
    ct += rng.normal(0, 15, size=shape).astype(np.int16)
    z = np.arange(shape[2])
    for cx, cy, cz, r in ((0.45, 0.5, 0.5, 0.05), (0.6, 0.45, 0.4, 0.035), (0.35, 0.55, 0.6, 0.025)):
        d = ((x - cx * shape[0]) * spacing[0]) ** 2 + ((y - cy * shape[1]) * spacing[1]) ** 2
        radius = r * shape[0] * spacing[0]
        ct[(d[..., None] + ((z - cz * shape[2]) * spacing[2]) ** 2) <= radius**2] = 20
    s = np.asarray(spacing, dtype=np.float64)
    return Payload(f"synthetic-{'x'.join(map(str, shape))}", ct, s, np.diag([*s, 1.0]))


def case_payloads(folder: Path) -> list[Payload]:
    """Every case under folder (as eanno-client annotate finds them), read and reoriented (InputError if none)."""
    cases = expand_inputs([folder])
    if not cases:
        raise InputError(f"{folder}: no cases found")
    out = []
    for case in cases:
        volume = read_volume(case.path)
        can = to_canonical(volume.data, volume.affine)
        out.append(Payload(case.name, can.data, can.spacing, can.affine))
    return out


class _Tickets:
    """Hands out request numbers until the step's count or deadline is reached (thread-safe)."""

    def __init__(self, requests: int | None, deadline: float) -> None:
        self.left, self.deadline = requests, deadline
        self.issued = 0
        self.lock = threading.Lock()

    def take(self) -> int | None:
        with self.lock:
            if (self.left is not None and self.issued >= self.left) or time.perf_counter() >= self.deadline:
                return None
            self.issued += 1
            return self.issued - 1


def _configs(config: ConnectionConfig | Sequence[ConnectionConfig]) -> list[ConnectionConfig]:
    return [config] if isinstance(config, ConnectionConfig) else list(config)


def _send(pool: EndpointPool, p: Payload, start: float) -> Record:
    """One request through the pool, as a record starting at `start`."""
    error, url = None, None
    try:
        _, url = pool.annotate(p.volume, p.spacing, p.affine)
    except ServerConnectionError as e:
        error = str(e)
    return Record(start, time.perf_counter(), p.voxels, error, url)


def run_step(
    config: ConnectionConfig | Sequence[ConnectionConfig],
    payloads: Sequence[Payload],
    concurrency: int,
    duration_s: float,
    requests: int | None,
    on_done: Callable[[Record], None] | None = None,
) -> list[Record]:
    """Keep `concurrency` requests in flight (one connection per client and endpoint, each request to the
    least busy endpoint) until a bound; return every record."""
    tickets = _Tickets(requests, time.perf_counter() + duration_s)
    records: list[Record] = []
    lock = threading.Lock()

    def client(pool: EndpointPool) -> None:
        while (ticket := tickets.take()) is not None:
            record = _send(pool, payloads[ticket % len(payloads)], time.perf_counter())
            with lock:
                records.append(record)
            if on_done is not None:
                on_done(record)

    with EndpointPool(_configs(config)) as pool:
        threads = [
            threading.Thread(target=client, args=(pool,), name=f"loadtest-client-{i}", daemon=True)
            for i in range(concurrency)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return sorted(records, key=lambda r: r.start)


def arrivals(rate: float, duration_s: float, requests: int | None, seed: int = 0) -> list[float]:
    """Poisson arrival offsets (s) at `rate` per second: exponential gaps, within the duration and count."""
    rng = np.random.default_rng(seed)
    out: list[float] = []
    t = 0.0
    while requests is None or len(out) < requests:
        t += float(rng.exponential(1.0 / rate))
        if t >= duration_s:
            break
        out.append(t)
    return out


def run_open_step(
    config: ConnectionConfig | Sequence[ConnectionConfig],
    payloads: Sequence[Payload],
    rate: float,
    duration_s: float,
    requests: int | None,
    max_in_flight: int = 64,
    seed: int = 0,
    on_done: Callable[[Record], None] | None = None,
) -> list[Record]:
    """Send requests at Poisson arrival times whatever the answers do; latency runs from each arrival."""
    schedule = arrivals(rate, duration_s, requests, seed)
    records: list[Record] = []
    lock = threading.Lock()

    def send(i: int, arrival: float) -> None:
        record = _send(pool, payloads[i % len(payloads)], arrival)
        with lock:
            records.append(record)
        if on_done is not None:
            on_done(record)

    with (
        EndpointPool(_configs(config)) as pool,
        ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="loadtest-open") as executor,
    ):
        t0 = time.perf_counter()
        for i, offset in enumerate(schedule):
            time.sleep(max(0.0, t0 + offset - time.perf_counter()))
            executor.submit(send, i, t0 + offset)
    return sorted(records, key=lambda r: r.start)


def _snapshot(metrics_url: str | None) -> Snapshot | None:
    if metrics_url is None:
        return None
    try:
        return fetch_metrics(metrics_url)
    except MetricsError as e:
        log.warning("%s; the server's own view is left out", e)
        return None


def _settled(metrics_url: str, before: Snapshot, sent: int, wait_s: float = 5.0) -> Snapshot | None:
    """The snapshot once the ensemble's counters include every request sent in the step.

    Triton counts a request after its response has gone out, so a snapshot taken the moment the last
    answer arrives can miss it; poll briefly until the count is complete (or give up and use the last).
    """
    deadline = time.monotonic() + wait_s
    while True:
        after = _snapshot(metrics_url)
        if after is None:
            return None
        counted = delta(before, after).get(ENSEMBLE, {})
        if counted.get("success", 0) + counted.get("failure", 0) >= sent or time.monotonic() > deadline:
            return after
        time.sleep(0.05)


def run_load(
    config: ConnectionConfig | Sequence[ConnectionConfig],
    payloads: Sequence[Payload],
    options: LoadOptions,
    metrics_url: str | None = None,
    on_step: Callable[[int], Callable[[Record], None] | None] | None = None,
) -> dict[str, Any]:
    """The whole load test: warm-up, then one step per concurrency; a JSON-able result."""
    if not payloads:
        raise ValueError("no payloads to send")
    start = _snapshot(metrics_url)
    warm = run_step(config, payloads, 1, 3600.0, options.warmup) if options.warmup else []
    if any(r.error for r in warm):
        raise ServerConnectionError(f"warm-up request failed: {warm[0].error}")
    # Each step starts from the settled snapshot of what came before, so a request that Triton counts
    # late (after its response went out) is never charged to the next step.
    before = _settled(metrics_url, start, len(warm)) if start is not None and metrics_url else None
    steps = []
    plan: list[tuple[int | None, float | None]] = (
        [(None, r) for r in options.rates] if options.rates else [(c, None) for c in options.concurrencies]
    )
    for c, rate in plan:
        callback = on_step(c if c is not None else rate) if on_step else None  # type: ignore[arg-type]
        if rate is None:
            records = run_step(config, payloads, c, options.duration_s, options.requests, callback)  # type: ignore[arg-type]
        else:
            records = run_open_step(
                config,
                payloads,
                rate,
                options.duration_s,
                options.requests,
                options.max_in_flight,
                options.seed,
                callback,
            )
        after = _settled(metrics_url, before, len(records)) if before is not None and metrics_url else None
        step = summarise(records, c, rate)
        step["server"] = step_view(before, after) if before is not None and after is not None else None
        steps.append(step)
        before = after if after is not None else _snapshot(metrics_url)
    urls = [c.url for c in _configs(config)]
    return {
        "url": urls[0],
        "urls": urls,
        "metrics_url": metrics_url,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "client_host": {
            "node": platform.node(),
            "machine": platform.machine(),
            "python": platform.python_version(),
        },
        "payloads": [
            {
                "name": p.name,
                "shape": list(p.volume.shape),
                "spacing_mm": [round(float(s), 4) for s in p.spacing],
                "voxels": p.voxels,
            }
            for p in payloads
        ],
        "bounds": {"duration_s": options.duration_s, "requests": options.requests, "warmup": options.warmup},
        "steps": steps,
        "capacity": capacity(steps, options.p95_target_s),
    }
