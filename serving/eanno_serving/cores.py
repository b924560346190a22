"""How many CPU cores this process may use: the thread counts of the window and the segmenter follow it."""

from __future__ import annotations

import math
import os


def usable_cores(cpu_max: str = "/sys/fs/cgroup/cpu.max") -> int:
    """CPU cores this process may use: its affinity (cpuset), capped by a cgroup v2 CPU quota (docker --cpus)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        with open(cpu_max) as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.floor(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota readable: the affinity stands
    return cores
