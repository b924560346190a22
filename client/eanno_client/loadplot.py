"""The load test's PNG: throughput and p99 latency against concurrency (matplotlib, the client's `all` extra)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eanno_client.atomic import write_bytes_atomic


def plot_load(result: Mapping[str, Any], path: Path) -> Path:
    """Draw volumes/min (left axis) and p99 latency in s (right axis) per concurrency; written atomically."""
    import io

    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI; chosen before pyplot is imported
    import matplotlib.pyplot as plt

    steps = result["steps"]
    conc = [s["concurrency"] for s in steps]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    ax.plot(conc, [s["volumes_per_min"] for s in steps], "o-", color="tab:blue", label="volumes / min")
    ax.set_xlabel("concurrency (requests in flight)")
    ax.set_ylabel("volumes / min", color="tab:blue")
    ax.set_xscale("log", base=2)
    ax.set_xticks(conc, [str(c) for c in conc])
    ax.set_ylim(bottom=0)
    right = ax.twinx()
    p99 = [None if s["latency_ms"]["p99"] is None else s["latency_ms"]["p99"] / 1e3 for s in steps]
    right.plot(conc, p99, "s--", color="tab:red", label="p99 latency (s)")
    right.set_ylabel("p99 latency (s)", color="tab:red")
    right.set_ylim(bottom=0)
    shapes = ", ".join("x".join(map(str, p["shape"])) for p in result["payloads"][:3])
    ax.set_title(f"eanno load test: {result['url']} ({shapes})", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())
    return path
