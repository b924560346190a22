"""`make soak`: concurrent clients against a local Triton server for a bounded time.

Starts the local server (the shipped model's repository, or --repository DIR), runs --clients threads that
each annotate generated phantoms in a loop over their own gRPC connection, samples the server's memory
(RSS of tritonserver and its Python backend stubs) and its /dev/shm regions once a second, stops the
server, and checks: zero errors, RSS and /dev/shm stable after the warm-up, no shared-memory region left.
Prints figures; the last line is one JSON object. Exit 1 when a check fails.

`--burst N` instead sends N full-size (--shape) requests at once to a server with bounded admission
(--window-instances, --admission-slots): some are refused "server busy" and retried, none may be lost
(scripts/soak_burst.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("soak")
WARMUP_FRACTION = 0.2  # memory is compared from the end of the warm-up to the end of the run
RSS_GROWTH_LIMIT = 0.10  # relative, plus RSS_SLACK_MB: allocator noise is not a leak
RSS_SLACK_MB = 64.0
SHM_SLACK_MB = 64.0  # one growth step of the Python backend's shared memory


def group_rss_mb(pid: int) -> float:
    """RSS (MiB) of every process in the process group of `pid` (tritonserver and its backend stubs)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            pgrp = int(stat.rsplit(")", 1)[1].split()[2])
            if pgrp != pid:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue  # a process that ended while being read
    return total / 1024


def shm_mb(prefix: str) -> float:
    """Bytes (MiB) of the server's /dev/shm regions."""
    return sum(p.stat().st_size for p in Path("/dev/shm").glob(f"{prefix}*") if p.exists()) / 2**20


def phantom_cases(n: int = 3, shape=(64, 56, 32)) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(canonical int16 volume, spacing, affine) of n seeded phantoms."""
    import nibabel as nib
    from eanno_training.phantoms import generate_phantom

    out = []
    for seed in range(n):
        p = generate_phantom(100 + seed, shape=list(shape), spacing=[1.6, 1.6, 2.5], n_lesions=1)
        can = nib.as_closest_canonical(nib.Nifti1Image(np.asarray(p.ct, np.int16), p.affine))
        out.append((np.asarray(can.dataobj, np.int16), np.array(can.header.get_zooms()[:3]), can.affine))
    return out


def run_soak(server, seconds: float, clients: int, cases) -> dict:
    """Load `server` from `clients` threads for `seconds`; returns the figures (server left running)."""
    from eanno_client.connection import Connection, ConnectionConfig

    url, pid, prefix = server.urls["grpc"], server.state.pid, server.state.shm_prefix
    stop = threading.Event()
    counts = {"requests": 0, "errors": 0}
    errors: list[str] = []
    lock = threading.Lock()
    latencies: list[float] = []

    def worker(k: int) -> None:
        with Connection(ConnectionConfig(url=url, retries=0, timeout_s=120)) as conn:
            i = k
            while not stop.is_set():
                vol, spacing, affine = cases[i % len(cases)]
                t0 = time.perf_counter()
                try:
                    labels, _, report = conn.annotate(vol, spacing, affine)
                    ok = labels.shape == vol.shape and "lesions" in report
                    msg = "" if ok else "wrong answer shape or report"
                except Exception as e:  # every failure is counted, none may happen
                    ok, msg = False, str(e)
                with lock:
                    counts["requests"] += 1
                    latencies.append(time.perf_counter() - t0)
                    if not ok:
                        counts["errors"] += 1
                        errors.append(msg)
                i += 1

    samples: list[tuple[float, float, float]] = []
    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    while time.monotonic() - start < seconds:
        samples.append((time.monotonic() - start, group_rss_mb(pid), shm_mb(prefix)))
        time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(timeout=180)
    samples.append((time.monotonic() - start, group_rss_mb(pid), shm_mb(prefix)))
    warm = next(s for s in samples if s[0] >= WARMUP_FRACTION * seconds)
    end = samples[-1]
    return {
        "seconds": round(time.monotonic() - start, 1),
        "clients": clients,
        **counts,
        "errors_seen": sorted(set(errors))[:5],
        "requests_per_s": round(counts["requests"] / max(end[0], 1e-9), 2),
        "latency_p50_s": round(float(np.median(latencies)), 3) if latencies else None,
        "latency_p95_s": round(float(np.percentile(latencies, 95)), 3) if latencies else None,
        "rss_mb": {
            "warm": round(warm[1], 1),
            "end": round(end[1], 1),
            "max": round(max(s[1] for s in samples), 1),
        },
        "shm_mb": {
            "warm": round(warm[2], 1),
            "end": round(end[2], 1),
            "max": round(max(s[2] for s in samples), 1),
        },
    }


def verdict(figures: dict) -> list[str]:
    """The failed checks (empty when the soak passed)."""
    bad = []
    if figures["errors"]:
        bad.append(f"{figures['errors']} errors: {figures['errors_seen']}")
    if figures["requests"] < figures["clients"]:
        bad.append(f"only {figures['requests']} requests")
    rss, shm = figures["rss_mb"], figures["shm_mb"]
    if rss["end"] > rss["warm"] * (1 + RSS_GROWTH_LIMIT) + RSS_SLACK_MB:
        bad.append(f"server RSS grew {rss['warm']} -> {rss['end']} MiB after the warm-up")
    if shm["end"] > shm["warm"] + SHM_SLACK_MB:
        bad.append(f"/dev/shm grew {shm['warm']} -> {shm['end']} MiB after the warm-up")
    if figures.get("shm_left_after_stop"):
        bad.append(f"shared-memory regions left after stop: {figures['shm_left_after_stop']}")
    return bad


def soak_local(repository: Path | None, seconds: float, clients: int, run_dir: Path, cases) -> dict:
    """Start a local server, soak it, stop it, and check /dev/shm is clean; the figures with 'failed' checks."""
    from eanno_serving.local import LocalServer

    if repository is None:
        from eanno_serving.default import default_repository

        repository = default_repository(run_dir)
    import socket
    from contextlib import ExitStack

    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(3)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        ports = [s.getsockname()[1] for s in socks]
    server = LocalServer(
        repository, grpc_port=ports[0], http_port=ports[1], metrics_port=ports[2], run_dir=run_dir / "server"
    )
    with server:
        assert server.state is not None  # set by start()
        prefix = server.state.shm_prefix
        figures = run_soak(server, seconds, clients, cases)
    figures["shm_left_after_stop"] = [str(p) for p in server.leftover_shm(prefix)]
    figures["failed"] = verdict(figures)
    return figures


def local_server(repository: Path, run_dir: Path):
    """A LocalServer (not started) for `repository` on free ports."""
    from eanno_serving.local import LocalServer, free_ports

    grpc, http, metrics = free_ports()
    return LocalServer(repository, grpc_port=grpc, http_port=http, metrics_port=metrics, run_dir=run_dir)


def burst_local(
    repository: Path | None,
    n: int,
    shape: tuple[int, int, int],
    run_dir: Path,
    window_instances: int = 4,
    admission_slots: int = 2,
    reserve_mb: int = 1024,
) -> dict:
    """Start a server (the shipped model with this capacity, or `repository`), burst it, stop it; figures."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # its sibling, also when loaded by the tests
    from soak_burst import burst_verdict, capacity_repository, full_size_phantom, run_burst

    if repository is None:
        repository = capacity_repository(
            run_dir / "repository", window_instances, admission_slots, reserve_mb
        )
    volume = full_size_phantom(shape)
    server = local_server(repository, run_dir / "server")
    with server:
        assert server.state is not None  # set by start()
        pid, prefix = server.state.pid, server.state.shm_prefix
        figures = run_burst(server, volume, (0.8, 0.8, 1.0), n, lambda: (group_rss_mb(pid), shm_mb(prefix)))
    figures |= {
        "window_instances": window_instances,
        "admission_slots": admission_slots,
        "shm_left_after_stop": [str(p) for p in server.leftover_shm(prefix)],
    }
    figures["failed"] = burst_verdict(figures)
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--repository", type=Path, help="Triton repository (default: the shipped model's)")
    ap.add_argument(
        "--burst",
        type=int,
        default=0,
        metavar="N",
        help="send N full-size requests at once to a server with bounded admission, instead",
    )
    ap.add_argument("--shape", type=int, nargs=3, default=[512, 512, 300], help="--burst: the volume's shape")
    ap.add_argument("--window-instances", type=int, default=4, help="--burst: window model instances")
    ap.add_argument("--admission-slots", type=int, default=2, help="--burst: full-size equivalents at once")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.burst:
        with tempfile.TemporaryDirectory(prefix="eanno-burst-") as tmp:
            figures = burst_local(
                args.repository,
                args.burst,
                tuple(args.shape),
                Path(tmp),
                args.window_instances,
                args.admission_slots,
            )
        report(
            figures,
            f"{figures['answered']} of {figures['requests']} {figures['shape']} requests answered in "
            f"{figures['seconds']} s; client retries {figures['retries']}, refusals logged "
            f"{figures['refusals_logged']}",
        )
    with tempfile.TemporaryDirectory(prefix="eanno-soak-") as tmp:
        figures = soak_local(args.repository, args.seconds, args.clients, Path(tmp), phantom_cases())
    report(
        figures,
        f"{figures['requests']} requests from {figures['clients']} clients in {figures['seconds']} s "
        f"({figures['requests_per_s']}/s, p50 {figures['latency_p50_s']} s), {figures['errors']} errors",
    )


def report(figures: dict, summary: str) -> None:
    """Print the summary with the server's memory, PASS or FAIL and the JSON; exit 1 on FAIL."""
    print(f"{summary}; server RSS {figures['rss_mb']} MiB, /dev/shm {figures['shm_mb']} MiB")
    print("PASS" if not figures["failed"] else "FAIL: " + "; ".join(figures["failed"]))
    print(json.dumps(figures))
    sys.exit(1 if figures["failed"] else 0)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
