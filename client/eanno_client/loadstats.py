"""The load test's arithmetic on recorded requests: throughput, latency percentiles (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class Record:
    """One request of a load step: when it was sent and answered (perf_counter seconds), its size, outcome."""

    start: float
    end: float
    voxels: int
    error: str | None = None

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


def summarise(records: Sequence[Record], concurrency: int) -> dict[str, Any]:
    """Throughput and latency of one step.

    The step's time runs from the first send to the last answer (the closed loop keeps `concurrency`
    requests in flight until the step's bound; the drain of the last ones is counted, as a user sees it).
    Throughput counts successful requests only; failed ones are reported under errors.
    """
    ok = [r for r in records if r.error is None]
    failed = [r for r in records if r.error is not None]
    seconds = (max(r.end for r in records) - min(r.start for r in records)) if records else 0.0
    per_s = len(ok) / seconds if seconds > 0 else 0.0
    latency_ms = {k: (None if v is None else round(v * 1e3, 1))
                  for k, v in percentiles([r.latency for r in ok]).items()}
    mean = round(float(np.mean([r.latency for r in ok])) * 1e3, 1) if ok else None
    return {
        "concurrency": concurrency, "requests": len(records), "ok": len(ok), "errors": len(failed),
        "error_messages": sorted({r.error for r in failed if r.error})[:5],
        "seconds": round(seconds, 3), "volumes_per_s": round(per_s, 4), "volumes_per_min": round(per_s * 60, 2),
        "voxels_per_s": round(sum(r.voxels for r in ok) / seconds) if seconds > 0 else 0,
        "latency_ms": {**latency_ms, "mean": mean},
    }


def relative_difference(a: float, b: float) -> float:
    """|a - b| / b (b the reference); inf when b is 0 and a is not."""
    if b == 0:
        return 0.0 if a == 0 else float("inf")
    return abs(a - b) / b
