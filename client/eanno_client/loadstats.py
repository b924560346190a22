"""The load test's arithmetic on recorded requests: throughput, latency percentiles (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

PERCENTILES = (50, 90, 95, 99)


@dataclass(frozen=True)
class Record:
    """One request of a load step: when it was sent and answered (perf_counter seconds), its size, outcome."""

    start: float  # closed loop: when sent; open loop: when it arrived (its scheduled time)
    end: float
    voxels: int
    error: str | None = None
    endpoint: str | None = None  # the server that answered (or failed)

    @property
    def latency(self) -> float:
        """Seconds from send to answer."""
        return self.end - self.start


def percentiles(values: Sequence[float], qs: Sequence[float] = PERCENTILES) -> dict[str, float | None]:
    """{'p50': ..., ...} by linear interpolation between closest ranks (numpy's default); None when empty."""
    if not len(values):
        return {f"p{q:g}": None for q in qs}
    got = np.percentile(np.asarray(values, dtype=np.float64), list(qs))
    return {f"p{q:g}": float(v) for q, v in zip(qs, got, strict=True)}


def endpoint_shares(records: Sequence[Record]) -> dict[str, dict[str, Any]]:
    """Per endpoint: requests answered, failed, and its share of the answered ones."""
    ok = sum(r.error is None for r in records)
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        e = out.setdefault(r.endpoint or "?", {"ok": 0, "errors": 0})
        e["ok" if r.error is None else "errors"] += 1
    for e in out.values():
        e["share"] = round(e["ok"] / ok, 4) if ok else 0.0
    return dict(sorted(out.items()))


def summarise(
    records: Sequence[Record], concurrency: int | None, rate: float | None = None
) -> dict[str, Any]:
    """Throughput and latency of one step (closed loop at `concurrency`, or open loop at `rate` per second).

    The step's time runs from the first send (open loop: arrival) to the last answer (the drain of the
    last requests is counted, as a user sees it). Throughput counts successful requests only; failed
    ones are reported under errors. cts_per_hour is that throughput per hour, beside the p95 latency it
    came with: the figure a hospital asks for.
    """
    ok = [r for r in records if r.error is None]
    failed = [r for r in records if r.error is not None]
    seconds = (max(r.end for r in records) - min(r.start for r in records)) if records else 0.0
    per_s = len(ok) / seconds if seconds > 0 else 0.0
    latency_ms = {
        k: (None if v is None else round(v * 1e3, 1)) for k, v in percentiles([r.latency for r in ok]).items()
    }
    mean = round(float(np.mean([r.latency for r in ok])) * 1e3, 1) if ok else None
    return {
        "mode": "closed" if rate is None else "open",
        "concurrency": concurrency,
        "request_rate": rate,
        "requests": len(records),
        "ok": len(ok),
        "errors": len(failed),
        "error_messages": sorted({r.error for r in failed if r.error})[:5],
        "seconds": round(seconds, 3),
        "volumes_per_s": round(per_s, 4),
        "volumes_per_min": round(per_s * 60, 2),
        "voxels_per_s": round(sum(r.voxels for r in ok) / seconds) if seconds > 0 else 0,
        "latency_ms": {**latency_ms, "mean": mean},
        "cts_per_hour": round(per_s * 3600, 1),
        "endpoints": endpoint_shares(records),
    }


def capacity(steps: Sequence[dict[str, Any]], p95_target_s: float | None) -> dict[str, Any] | None:
    """The step with the most CTs per hour whose p95 latency is within the target (None: no step is)."""
    if p95_target_s is None:
        return None
    within = [
        s
        for s in steps
        if s["ok"]
        and s["latency_ms"]["p95"] is not None
        and s["latency_ms"]["p95"] <= p95_target_s * 1e3
        and not s["errors"]
    ]
    if not within:
        return {"p95_target_s": p95_target_s, "cts_per_hour": 0.0, "step": None}
    best = max(within, key=lambda s: s["cts_per_hour"])
    return {
        "p95_target_s": p95_target_s,
        "cts_per_hour": best["cts_per_hour"],
        "p95_s": round(best["latency_ms"]["p95"] / 1e3, 3),
        "step": {
            "mode": best["mode"],
            "concurrency": best["concurrency"],
            "request_rate": best["request_rate"],
        },
    }


def relative_difference(a: float, b: float) -> float:
    """|a - b| / b (b the reference); inf when b is 0 and a is not."""
    if b == 0:
        return 0.0 if a == 0 else float("inf")
    return abs(a - b) / b
