"""Memory under a burst: N full-size volumes sent at once to the local server (shipped model).

Starts the default repository on free ports, sends `--requests` copies of a 512 x 512 x 300 phantom at
once (one gRPC client each), and samples every 0.5 s: the resident memory of tritonserver and its
Python-backend stubs (its process group), this server's /dev/shm regions, and the machine's used swap.
Prints the peaks and whether every answer came back equal to the first; last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from bench_serving import phantom
from eanno_serving.default import default_repository
from eanno_serving.local import SHM_DIR, LocalServer, free_ports
from eanno_serving.smoke import annotate_remote, connect


def group_rss(pgid: int) -> int:
    """Resident bytes of every process in process group `pgid`."""
    total = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[2]) == pgid:
                total += int(stat[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    return total


def swap_used() -> int:
    """Used swap of the machine in bytes (0 when there is none)."""
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return (int(info["SwapTotal"].split()[0]) - int(info["SwapFree"].split()[0])) * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--shape", type=int, nargs=3, default=[512, 512, 300])
    args = ap.parse_args()
    volume, spacing = phantom(tuple(args.shape)), (0.8, 0.8, 1.0)
    with tempfile.TemporaryDirectory(prefix="eanno-mem-") as tmp:
        repo = default_repository(Path(tmp) / "run", None)
        grpc, http, metrics = free_ports()
        with LocalServer(
            repo, grpc_port=grpc, http_port=http, metrics_port=metrics, run_dir=Path(tmp) / "run"
        ) as srv:
            assert srv.state is not None  # a started server has its state (mypy cannot know)
            pid, prefix = srv.state.pid, srv.state.shm_prefix
            base = {"rss": group_rss(pid), "swap": swap_used()}
            peak = {"rss": 0, "shm": 0, "swap": 0}
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    shm = sum(p.stat().st_size for p in SHM_DIR.glob(f"{prefix}*"))
                    for key, value in (("rss", group_rss(pid)), ("shm", shm), ("swap", swap_used())):
                        peak[key] = max(peak[key], value)
                    time.sleep(0.5)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.requests) as pool:
                answers = list(
                    pool.map(
                        lambda _: annotate_remote(connect(srv.urls["grpc"]), volume, spacing),
                        range(args.requests),
                    )
                )
            wall = time.perf_counter() - t0
            done.set()
            sampler.join()
            alive = srv.ready()
    equal = all(np.array_equal(a.labels, answers[0].labels) for a in answers)
    out = {
        "requests": args.requests,
        "shape": args.shape,
        "wall_s": round(wall, 1),
        "all_answered": len(answers),
        "answers_equal": equal,
        "server_alive_after": alive,
        "rss_before_bytes": base["rss"],
        "rss_peak_bytes": peak["rss"],
        "shm_peak_bytes": peak["shm"],
        "swap_growth_bytes": max(0, peak["swap"] - base["swap"]),
    }
    print(
        f"{args.requests} x {args.shape} at once: {len(answers)} answered in {wall:.0f} s, equal: {equal}, "
        f"server alive: {alive}; server RSS {base['rss'] / 1e9:.2f} -> peak {peak['rss'] / 1e9:.2f} GB, "
        f"/dev/shm peak {peak['shm'] / 1e9:.2f} GB, swap growth {out['swap_growth_bytes'] / 1e9:.2f} GB"
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
