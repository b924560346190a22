"""make bench-loadtest: eanno-client's load test against Triton's own perf_analyzer, same server, same volume.

Starts `eanno-server start` (the shipped model, or --repository DIR) on free ports, then for each
concurrency runs our load test (eanno_client.loadtest.run_load: --requests per step, closed loop) and
perf_analyzer on the ensemble eanno_annotate with an input-data JSON holding the very same volume,
spacing and affine, for the same number of requests (--request-count: perf_analyzer's stability windows
did not settle within 10 % on this shared 2-core machine, where one request takes seconds). The two
throughputs (requests per second) must agree within 10 % at every concurrency.

perf_analyzer is the binary inside tritonclient[all]==2.51.0 (the server's release), installed by the
Makefile in its own virtual environment (.venv-perf; the main .venv pins tritonclient 2.73), with the
CUDA runtime's lib/ on LD_LIBRARY_PATH and libb64-0d from Debian (shared/ENVIRONMENT.md).
The last printed line is one JSON object: by_concurrency, max_relative_difference, target.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

from eanno_client.connection import ConnectionConfig
from eanno_client.loadstats import relative_difference
from eanno_client.loadtest import LoadOptions, Payload, parse_shape, run_load, synthetic_payload

TARGET = 0.10
REPO = Path(__file__).resolve().parents[2]


def free_ports(n: int = 3) -> list[int]:
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


@contextmanager
def local_server(repository: Path | None, run_dir: Path):
    """`eanno-server start` on free ports, stopped on exit; yields (gRPC URL, metrics URL)."""
    grpc, http, metrics = free_ports()
    exe = str(Path(sys.executable).parent / "eanno-server")
    cmd = [exe, "start", "--grpc-port", str(grpc), "--http-port", str(http), "--metrics-port", str(metrics),
           "--run-dir", str(run_dir)] + (["--repository", str(repository)] if repository else [])
    subprocess.run(cmd, check=True)
    try:
        yield f"127.0.0.1:{grpc}", f"http://127.0.0.1:{metrics}/metrics"
    finally:
        subprocess.run([exe, "stop", "--run-dir", str(run_dir)], check=False)


def perf_analyzer_input(p: Payload, path: Path) -> Path:
    """perf_analyzer's --input-data JSON: one request with the payload's volume, spacing and affine."""
    def entry(arr) -> dict:
        return {"content": arr.reshape(-1).tolist(), "shape": list(arr.shape)}

    data = {"data": [{"volume": entry(p.volume), "spacing": entry(p.spacing.astype("float32")),
                      "affine": entry(p.affine.astype("float32"))}]}
    path.write_text(json.dumps(data))
    return path


def run_perf_analyzer(exe: Path, url: str, data: Path, concurrency: int, requests: int, csv_path: Path) -> float:
    """perf_analyzer at one concurrency; its stable throughput in requests per second."""
    env = dict(os.environ)
    lib = next(exe.parent.parent.glob("lib/python3*/site-packages/nvidia/cuda_runtime/lib"), None)
    if lib is not None:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(lib), env.get("LD_LIBRARY_PATH", "")) if p)
    cmd = [str(exe), "-m", "eanno_annotate", "-u", url, "-i", "grpc", "--input-data", str(data),
           "--concurrency-range", f"{concurrency}:{concurrency}", "--request-count", str(requests),
           "-f", str(csv_path)]
    print("$", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"perf_analyzer failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    return float(rows[0]["Inferences/Second"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="a running server's gRPC address (default: start eanno-server on free ports)")
    ap.add_argument("--repository", type=Path, help="model repository for the started server (default: shipped)")
    ap.add_argument("--shape", default="96x96x48", help="synthetic volume IxJxK")
    ap.add_argument("--spacing", type=float, nargs=3, default=[1.5, 1.5, 2.5])
    ap.add_argument("--concurrency", default="1,2,4")
    ap.add_argument("--requests", type=int, default=8, help="requests per step per client: both tools send this x concurrency")
    ap.add_argument("--perf-analyzer", type=Path, default=REPO / ".venv-perf" / "bin" / "perf_analyzer")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not args.perf_analyzer.is_file():
        raise SystemExit(f"{args.perf_analyzer} not found: run `make bench-loadtest` (it builds .venv-perf)")
    payload = synthetic_payload(parse_shape(args.shape), args.spacing)
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    by: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-loadtest-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        if args.url:
            url, metrics = args.url, None
        else:
            url, metrics = stack.enter_context(local_server(args.repository, work / "run"))
        data = perf_analyzer_input(payload, work / "input.json")
        config = ConnectionConfig(url=url, timeout_s=3600, retries=0)
        for i, c in enumerate(concurrencies):
            # ours and perf_analyzer alternate per concurrency, so drifting load from other jobs hits both
            t0 = time.perf_counter()
            ours = run_load(config, [payload], LoadOptions((c,), duration_s=3600, requests=args.requests * c,
                                                          warmup=0 if i else 2), metrics)["steps"][0]
            t_ours = time.perf_counter() - t0
            if ours["errors"]:
                raise SystemExit(f"our load test had errors at concurrency {c}: {ours['error_messages']}")
            t0 = time.perf_counter()
            pa = run_perf_analyzer(args.perf_analyzer, url, data, c, args.requests * c, work / f"pa{c}.csv")
            t_pa = time.perf_counter() - t0
            d = relative_difference(ours["volumes_per_s"], pa)
            seg = (ours.get("server") or {}).get("eanno_segmenter") or {}
            by[str(c)] = {"ours_per_s": ours["volumes_per_s"], "perf_analyzer_per_s": round(pa, 4),
                          "relative_difference": round(d, 4), "ours_p50_ms": ours["latency_ms"]["p50"],
                          "ours_p99_ms": ours["latency_ms"]["p99"], "ours_requests": ours["ok"],
                          "segmenter_patches_per_exec": seg.get("inferences_per_execution"),
                          "wall_s": {"ours": round(t_ours, 1), "perf_analyzer": round(t_pa, 1)}}
            print(f"concurrency {c}: ours {ours['volumes_per_s']:.3f}/s ({ours['ok']} requests, p50 "
                  f"{ours['latency_ms']['p50']} ms) vs perf_analyzer {pa:.3f}/s -> {d:.1%}", flush=True)
    worst = max(v["relative_difference"] for v in by.values())
    result = {"shape": list(payload.volume.shape), "spacing_mm": args.spacing, "voxels": payload.voxels,
              "requests_per_step": {c: args.requests * int(c) for c in by}, "by_concurrency": by,
              "max_relative_difference": round(worst, 4), "target": TARGET, "meets_target": worst <= TARGET}
    print(f"max relative difference {worst:.1%} (target <= {TARGET:.0%})")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
