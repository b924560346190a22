"""`make soak SOAK_ARGS="--burst 8"`: N full-size requests at once against a server with bounded admission.

The window model admits `--admission-slots` full-size equivalents at once across `--window-instances`
processes (serving/README.md, "Admission"); what exceeds that is refused "server busy"
(UNAVAILABLE) and each client backs off (jittered) and retries. Checks: every request answered, the answers
equal (one volume sent N times), the server alive after, the refusals in the server log equal to the
clients' retries, no shared-memory region left after stop. Samples the server's RSS and /dev/shm.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]


def full_size_phantom(shape: tuple[int, int, int]) -> np.ndarray:
    """bench_serving's deterministic abdomen-like phantom (the one every memory figure is measured on)."""
    sys.path.insert(0, str(REPO_ROOT / "serving" / "benchmarks"))
    from bench_serving import phantom  # noqa: PLC0415

    return phantom(shape)


def capacity_repository(out: Path, window_instances: int, admission_slots: int, reserve_mb: int) -> Path:
    """The shipped model's python-onnxruntime repository with the given capacity (eanno-export repository)."""
    from eanno_serving.default import export_repository

    capacity = [f"--window-instances={window_instances}", f"--admission-slots={admission_slots}"]
    return export_repository(out, None, *capacity, f"--admission-reserve-mb={reserve_mb}")


def run_burst(
    server: Any,
    volume: np.ndarray,
    spacing: tuple[float, float, float],
    n: int,
    sample: Callable[[], tuple[float, float]],
) -> dict[str, Any]:
    """Send `volume` n times at once (one connection each); the figures (server left running)."""
    from eanno_client.connection import Connection, ConnectionConfig

    affine = np.diag([*spacing, 1.0])
    url = server.urls["grpc"]
    peak = {"rss_mb": 0.0, "shm_mb": 0.0}
    done = threading.Event()

    def sampler() -> None:
        while not done.is_set():
            rss, shm = sample()
            peak["rss_mb"], peak["shm_mb"] = max(peak["rss_mb"], rss), max(peak["shm_mb"], shm)
            time.sleep(0.5)

    def one(k: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        with Connection(ConnectionConfig(url=url, timeout_s=3600, busy_wait_s=3600)) as conn:
            try:
                labels, removed, report = conn.annotate(volume, np.asarray(spacing), affine)
            except Exception as e:  # counted: none may happen
                return {
                    "request": k,
                    "error": str(e),
                    "retries": conn.last_retries,
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            return {
                "request": k,
                "error": "",
                "retries": conn.last_retries,
                "seconds": round(time.perf_counter() - t0, 1),
                "answer": hash((labels.tobytes(), removed.tobytes(), len(report.get("lesions", [])))),
            }

    rss0, shm0 = sample()
    watcher = threading.Thread(target=sampler, daemon=True)
    watcher.start()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(one, range(n)))
    wall = time.perf_counter() - start
    done.set()
    watcher.join(5)
    answers = {r["answer"] for r in results if not r["error"]}
    log_text = Path(server.state.log).read_text(errors="replace")
    return {
        "requests": n,
        "shape": list(volume.shape),
        "seconds": round(wall, 1),
        "answered": sum(not r["error"] for r in results),
        "errors": [r["error"] for r in results if r["error"]],
        "identical_answers": len(answers) == 1,
        "retries": [r["retries"] for r in results],
        "request_seconds": [r["seconds"] for r in results],
        "refusals_logged": log_text.count("server busy"),
        "server_alive": server.ready(),
        "rss_mb": {"idle": round(rss0, 1), "peak": round(peak["rss_mb"], 1)},
        "shm_mb": {"idle": round(shm0, 1), "peak": round(peak["shm_mb"], 1)},
    }


def burst_verdict(f: dict[str, Any]) -> list[str]:
    """The failed checks of a burst (empty when it passed)."""
    bad = []
    if f["answered"] != f["requests"] or f["errors"]:
        bad.append(f"{f['requests'] - f['answered']} of {f['requests']} not answered: {f['errors'][:3]}")
    if f["answered"] and not f["identical_answers"]:
        bad.append("the answers to the same volume differ")
    if f["refusals_logged"] != sum(f["retries"]):
        bad.append(
            f"server logged {f['refusals_logged']} refusals, clients retried {sum(f['retries'])} times"
        )
    if f.get("server_alive") is False:
        bad.append("the server is not ready after the burst")
    if f.get("shm_left_after_stop"):
        bad.append(f"shared-memory regions left after stop: {f['shm_left_after_stop']}")
    return bad
