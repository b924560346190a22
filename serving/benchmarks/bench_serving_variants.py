"""Served-path settings against each other: one local server per setting, all up at once, interleaved rounds.

Each variant is `NAME=WINDOW_BATCH,MAX_BATCH[,INSTANCES]` (patches per BLS request, the segmenter's
dynamic-batching limit, CPU segmenter instances) of the python-onnxruntime flavor of the shipped model.
Every round sends the benchmark volume once to each server (the order alternates), so the machine's
drift hits every variant alike; medians and ratios to the first variant are printed, with the segmenter's
executions per request (Triton statistics) and whether the labels equal the first variant's.
Example (the issue-15 A/B): `bench_serving_variants.py new=1,2 old=4,8 --rounds 5`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
from bench_serving import phantom, training_phantom
from eanno_serving.default import default_repository
from eanno_serving.local import LocalServer, free_ports
from eanno_serving.onnx_session import onnx_meta, open_session
from eanno_serving.repository import ServingSpec, write_repository
from eanno_serving.smoke import annotate_remote, connect


def executions(client: Any) -> tuple[int, int]:
    """(executions, requests) of the segmenter so far."""
    for m in client.get_inference_statistics("eanno_segmenter").model_stats:
        return int(m.execution_count), int(m.inference_stats.success.count)
    return 0, 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variants", nargs="+", help="NAME=WINDOW_BATCH,MAX_BATCH[,INSTANCES]")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--phantom", choices=["training", "simple"], default="training")
    ap.add_argument("--shape", type=int, nargs=3, default=[512, 512, 300])
    ap.add_argument("--spacing", type=float, nargs=3, default=[0.8, 0.8, 1.0])
    args = ap.parse_args()
    shape, spacing = tuple(args.shape), tuple(args.spacing)
    variants: dict[str, tuple[int, ...]] = {}
    for v in args.variants:
        name, _, values = v.partition("=")
        variants[name] = tuple(int(x) for x in values.split(","))
        if len(variants[name]) not in (2, 3):
            ap.error(f"variant {v!r}: expected NAME=WINDOW_BATCH,MAX_BATCH[,INSTANCES]")
    times: dict[str, list[float]] = {k: [] for k in variants}
    with tempfile.TemporaryDirectory(prefix="eanno-variants-") as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        if args.phantom == "training":
            training_phantom(tmp / "volume.npy", 0, shape, spacing)
            volume = np.load(tmp / "volume.npy")
        else:
            volume = phantom(shape)
        onnx = default_repository(tmp / "default") / "eanno_segmenter" / "1" / "model.onnx"
        meta = onnx_meta(open_session(onnx)[0])
        clients, before, labels = {}, {}, {}
        for name, (window_batch, max_batch, *instances) in variants.items():
            spec = ServingSpec(
                meta,
                window_batch=window_batch,
                max_batch=max_batch,
                cpu_instances=instances[0] if instances else 2,
            )
            repo = write_repository(spec, "python-onnxruntime", tmp / name / "repository", onnx)
            g, h, m = free_ports()
            server = stack.enter_context(
                LocalServer(repo, grpc_port=g, http_port=h, metrics_port=m, run_dir=tmp / name)
            )
            clients[name] = connect(server.urls["grpc"])
            annotate_remote(clients[name], volume, spacing)  # warm-up at full size
            before[name] = executions(clients[name])
        for r in range(args.rounds):
            order = list(variants) if r % 2 == 0 else list(reversed(variants))
            for name in order:
                t0 = time.perf_counter()
                labels[name] = annotate_remote(clients[name], volume, spacing).labels
                times[name].append(time.perf_counter() - t0)
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
        after = {k: executions(c) for k, c in clients.items()}
    first = next(iter(variants))
    base = statistics.median(times[first])
    for name, ts in times.items():
        execs = (after[name][0] - before[name][0]) / args.rounds
        reqs = (after[name][1] - before[name][1]) / args.rounds
        print(
            f"{name} {variants[name]}: median {statistics.median(ts):.2f} s ({min(ts):.2f}-{max(ts):.2f}), "
            f"{statistics.median(ts) / base:.3f}x {first}; segmenter {reqs:.0f} requests in {execs:.1f} "
            f"executions; labels equal {first}'s: {bool(np.array_equal(labels[name], labels[first]))}"
        )


if __name__ == "__main__":
    main()
