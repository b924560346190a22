"""A closed-loop load test of the annotate path: N clients each keep one request in flight, step by step.

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
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from eanno_client.cases import expand_inputs
from eanno_client.connection import ENSEMBLE, Connection, ConnectionConfig, ServerConnectionError
from eanno_client.loadstats import Record, summarise
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


def run_step(config: ConnectionConfig, payloads: Sequence[Payload], concurrency: int, duration_s: float,
             requests: int | None, on_done: Callable[[Record], None] | None = None) -> list[Record]:
    """Keep `concurrency` requests in flight (one connection per client) until a bound; return every record."""
    tickets = _Tickets(requests, time.perf_counter() + duration_s)
    records: list[Record] = []
    lock = threading.Lock()

    def client() -> None:
        with Connection(config) as conn:
            while (ticket := tickets.take()) is not None:
                p = payloads[ticket % len(payloads)]
                start = time.perf_counter()
                error = None
                try:
                    conn.annotate(p.volume, p.spacing, p.affine)
                except ServerConnectionError as e:
                    error = str(e)
                record = Record(start, time.perf_counter(), p.voxels, error)
                with lock:
                    records.append(record)
                if on_done is not None:
                    on_done(record)

    threads = [threading.Thread(target=client, name=f"loadtest-client-{i}", daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
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


def run_load(config: ConnectionConfig, payloads: Sequence[Payload], options: LoadOptions,
             metrics_url: str | None = None,
             on_step: Callable[[int], Callable[[Record], None] | None] | None = None) -> dict[str, Any]:
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
    for c in options.concurrencies:
        records = run_step(config, payloads, c, options.duration_s, options.requests,
                           on_step(c) if on_step else None)
        after = _settled(metrics_url, before, len(records)) if before is not None and metrics_url else None
        step = summarise(records, c)
        step["server"] = step_view(before, after) if before is not None and after is not None else None
        steps.append(step)
        before = after if after is not None else _snapshot(metrics_url)
    return {
        "url": config.url, "metrics_url": metrics_url,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "client_host": {"node": platform.node(), "machine": platform.machine(), "python": platform.python_version()},
        "payloads": [{"name": p.name, "shape": list(p.volume.shape), "spacing_mm": [round(float(s), 4) for s in p.spacing],
                      "voxels": p.voxels} for p in payloads],
        "bounds": {"duration_s": options.duration_s, "requests": options.requests, "warmup": options.warmup},
        "steps": steps,
    }
