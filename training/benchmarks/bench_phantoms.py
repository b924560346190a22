"""Phantom generation and patch sampling speed on this machine.

Baseline measured in the same run: drawing standard-normal float32 noise for the same number of voxels
(numpy's Generator), i.e. the cost of the noise alone in the most direct implementation; the ratio says
how many such noise draws a complete phantom costs. Last line: one JSON object.
"""

from __future__ import annotations

import json
import os
import platform
import time
from typing import Any

import numpy as np
from eanno_training.data import Augment, PatchDataset, intensity_stats, phantom_cases
from eanno_training.phantoms import generate_phantom


def best_of(fn, repeats: int) -> tuple[float, float]:
    """The fastest of `repeats` runs: (wall seconds, CPU seconds of this process, all threads).

    CPU seconds are reported too because this machine is shared: under load the wall time of a
    two-thread step stretches while its CPU time stays what the work costs."""
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        best = min(best, (time.perf_counter() - t, time.process_time() - c))
    return best


def main() -> None:
    results: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"}
    configs: dict[str, dict[str, Any]] = {
        "default": {},
        "128^3": {"shape": (128, 128, 128)},
        "512x512x300": {"shape": (512, 512, 300), "spacing": (0.78, 0.78, 1.0), "orientation": "LPS"},
    }
    for name, kw in configs.items():
        repeats = 2 if name == "512x512x300" else 5
        ph = generate_phantom(0, **kw)
        voxels = int(np.prod(ph.ct.shape))
        gen, gen_cpu = best_of(lambda kw=kw: generate_phantom(0, **kw), repeats)
        rng = np.random.default_rng(0)
        base, _ = best_of(lambda n=voxels, rng=rng: rng.standard_normal(n, dtype=np.float32), repeats)
        results[name] = {
            "shape": list(ph.ct.shape),
            "seconds": round(gen, 3),
            "cpu_seconds": round(gen_cpu, 3),
            "noise_only_seconds": round(base, 3),
            "ratio": round(gen / base, 2),
        }
        print(
            f"{name:12s} {str(ph.ct.shape):18s} {gen:6.2f} s wall, {gen_cpu:6.2f} s CPU"
            f"   (noise alone {base:5.2f} s, x{gen / base:.1f})"
        )
    t = time.perf_counter()
    cases = phantom_cases(4, 0, (2.5, 2.5, 2.5))
    per_case = (time.perf_counter() - t) / 4
    print(f"phantom_cases at 2.5 mm: {per_case:.2f} s per case (generate + canonical + resample)")
    stats = intensity_stats(cases)
    for label, aug in (("patches 64^3, no augmentation", None), ("patches 64^3, augmented", Augment())):
        ds = PatchDataset(cases, (64, 64, 64), intensity=stats, samples_per_epoch=40, seed=0, augment=aug)
        rate = 40 / best_of(lambda ds=ds: [ds[i] for i in range(40)], 1)[0]
        results[label] = {"patches_per_s": round(rate, 1)}
        print(f"{label}: {rate:.1f} patches/s")
    results["phantom_cases_seconds_per_case"] = round(per_case, 3)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
