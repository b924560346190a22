"""`make bench-postproc`: refine on a generated 512x512x300 case against the plain scipy baseline.

Times `eanno_postproc.refine` on a label map and on float16 probabilities (median of --runs), the
scipy.ndimage baseline of the same rules (median of --baseline-runs) in the same process, asserts
identical outputs, measures refine's peak memory (tracemalloc, which sees numpy's buffers), and prints
the figures; the last line is one JSON object. --strict exits 1 when a target is missed.
CPU seconds (this process) are printed beside wall seconds: everything here is single-threaded, so on
an idle machine they agree, and on a shared one they show the cost without the other tenants' load.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the baseline lives beside this script
from baseline_scipy import baseline_refine  # noqa: E402
from eanno_postproc import refine  # noqa: E402
from eanno_postproc.synthetic import make_case  # noqa: E402

T = TypeVar("T")

TARGETS = {"seconds": 1.0, "seconds_probs": 3.0, "speedup": 5.0, "peak_ratio": 3.0}


def _median_seconds(fn: Callable[[], T], runs: int) -> tuple[float, float, T]:
    """(median wall seconds, median CPU seconds of this process, last result) over `runs` (>= 1) calls."""
    times: list[float] = []
    cpu: list[float] = []
    result: T | None = None
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    assert result is not None, "runs must be >= 1"
    return statistics.median(times), statistics.median(cpu), result


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@click.command()
@click.option("--shape", default="512,512,300", show_default=True, help="Volume shape i,j,k.")
@click.option(
    "--candidates", default=40, show_default=True, help="Lesion candidates placed in the label map."
)
@click.option(
    "--speckles",
    default=2000,
    show_default=True,
    help="Extra low-probability lesion voxels in the probabilities (a sensitive model's noise).",
)
@click.option("--runs", default=5, show_default=True, help="Timed runs of refine per input (median).")
@click.option("--baseline-runs", default=3, show_default=True, help="Timed runs of the baseline (median).")
@click.option("--seed", default=0, show_default=True)
@click.option("--strict", is_flag=True, help="Exit 1 when a target is missed.")
def main(
    shape: str, candidates: int, speckles: int, runs: int, baseline_runs: int, seed: int, strict: bool
) -> None:
    """Benchmark refine against the scipy baseline; the last line printed is JSON."""
    d0, d1, d2 = (int(s) for s in shape.split(","))
    dims = (d0, d1, d2)
    t0 = time.perf_counter()
    case = make_case(
        shape=dims, n_candidates=candidates, seed=seed, probs_dtype=np.float16, speckles=speckles
    )
    print(
        f"case {dims}: {len(case.expected)} candidates placed, {speckles} speckles, "
        f"generated in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    ct, labels, probs, affine = case.ct, case.labels, case.probs, case.affine
    assert probs is not None  # asked for with probs_dtype

    refine(ct, labels, affine=affine)  # warm-up: imports, page faults of the first allocations
    seconds, cpu, res = _median_seconds(lambda: refine(ct, labels, affine=affine), runs)
    seconds_probs, cpu_probs, res_p = _median_seconds(lambda: refine(ct, probs=probs, affine=affine), runs)
    print(
        f"refine labels: {seconds:.3f} s (CPU {cpu:.3f} s)   probs (float16): {seconds_probs:.3f} s "
        f"(CPU {cpu_probs:.3f} s)   median of {runs}",
        flush=True,
    )
    baseline_seconds, baseline_cpu, base = _median_seconds(lambda: baseline_refine(ct, labels), baseline_runs)
    print(
        f"baseline (scipy.ndimage) labels: {baseline_seconds:.2f} s (CPU {baseline_cpu:.2f} s), "
        f"median of {baseline_runs}",
        flush=True,
    )
    base_p = baseline_refine(ct, probs=probs)

    for name, ours, theirs in (("labels", res, base), ("probs", res_p, base_p)):
        same = np.array_equal(ours.labels, theirs[0]) and np.array_equal(ours.removed, theirs[1])
        same &= Counter((x["class_id"], x["decision"]) for x in ours.report["lesions"]) == Counter(theirs[2])
        if not same:
            raise SystemExit(f"refine and the baseline disagree on the {name} input")
    decisions = dict(Counter(x["decision"] for x in res.report["lesions"]))
    expected = dict(Counter(e["decision"] for e in case.expected))
    if decisions != expected:
        raise SystemExit(f"refine's decisions {decisions} differ from the case's expected {expected}")
    print(
        f"identical outputs; decisions {decisions}; probs path: {res_p.report['summary']['candidates']} candidates"
    )

    in_labels = ct.nbytes + labels.nbytes
    in_probs = ct.nbytes + probs.nbytes
    peak = _peak_bytes(lambda: refine(ct, labels, affine=affine))
    peak_probs = _peak_bytes(lambda: refine(ct, probs=probs, affine=affine))
    mib = 1 << 20
    figures = {
        "shape": list(dims),
        "seconds": round(seconds, 4),
        "seconds_probs": round(seconds_probs, 4),
        "baseline_seconds": round(baseline_seconds, 3),
        "speedup": round(baseline_seconds / seconds, 2),
        "cpu_seconds": round(cpu, 4),
        "cpu_seconds_probs": round(cpu_probs, 4),
        "baseline_cpu_seconds": round(baseline_cpu, 3),
        "peak_mib": round(peak / mib, 1),
        "peak_mib_probs": round(peak_probs / mib, 1),
        "input_mib": round(in_labels / mib, 1),
        "input_mib_probs": round(in_probs / mib, 1),
        "peak_ratio": round(max(peak / in_labels, peak_probs / in_probs), 3),
        "runs": runs,
        "baseline_runs": baseline_runs,
        "cpu": f"{platform.processor() or platform.machine()} x{os.cpu_count()}",
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    missed = [
        k for k, limit in TARGETS.items() if (figures[k] < limit if k == "speedup" else figures[k] > limit)
    ]
    figures["targets_met"] = not missed
    print(
        "targets: labels <= 1.0 s, probs <= 3.0 s, speedup >= 5x, peak <= 3x inputs: "
        + ("all met" if not missed else f"missed {missed}")
    )
    print(json.dumps(figures))
    if strict and missed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
