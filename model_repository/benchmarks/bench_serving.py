"""make bench-serving: a 512 x 512 x 300 phantom through the local Triton server vs in-process (issue 4 item 6).

Baseline, same machine, same run: the torch predictor + refine in one process (eanno_export.inprocess,
run as a subprocess because this folder may not import training). Served: the python-onnxruntime
repository of the same checkpoint on the wheel's tritonserver, one gRPC client per concurrency slot.
Overhead = served / in-process - 1 at concurrency 1. Last line: one JSON object.

On a CPU the two paths also differ in runtime (torch eager vs ONNX Runtime), which can dwarf the serving
cost itself; so a second baseline runs the same ONNX file with ONNX Runtime and the same numpy window
in this process (no Triton), and `overhead_same_runtime` = served / that - 1 isolates Triton's own cost
(gRPC, shared memory, BLS, the ensemble hand-offs).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from eanno_postproc import refine
from eanno_serving.default import default_repository
from eanno_serving.local import LocalServer, free_ports
from eanno_serving.onnx_session import onnx_meta, open_session
from eanno_serving.smoke import annotate_remote, connect
from eanno_serving.window import WindowSpec, sliding_window


def phantom(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """A deterministic abdomen-like int16 volume: body ellipse, organs, a pancreas-like bright band, a lesion."""
    rng = np.random.default_rng(seed)
    i, j, k = (np.linspace(-1, 1, n, dtype=np.float32) for n in shape)
    I, J = np.meshgrid(i, j, indexing="ij")  # noqa: E741 - image axes
    ct = np.full(shape, -1000, np.int16)
    body = (I / 0.85) ** 2 + (J / 0.65) ** 2 < 1
    for z in range(shape[2]):
        s = ct[:, :, z]
        s[body] = 40
        s[((I - 0.3) / 0.25) ** 2 + ((J + 0.1) / 0.2) ** 2 < 1] = 60  # liver-like
        s[((I + 0.05) / 0.3) ** 2 + ((J - 0.05) / 0.07) ** 2 < 1 - k[z] ** 2] = 110  # pancreas-like
        s[((I + 0.1) / 0.05) ** 2 + ((J - 0.05) / 0.04) ** 2 < 1 - (k[z] / 0.3) ** 2] = 30  # lesion-like
    return (ct + rng.normal(0, 12, shape).astype(np.int16)).astype(np.int16)




def inprocess_onnx(onnx_path: Path, volume: np.ndarray, spacing: tuple[float, ...]) -> tuple[float, np.ndarray]:
    """Seconds and labels for ONNX Runtime + the numpy window + refine in this process (no Triton)."""
    session, _ = open_session(onnx_path)
    meta = onnx_meta(session)
    spec = WindowSpec.from_meta(meta)

    def infer(batch: np.ndarray) -> np.ndarray:
        return session.run(["probs"], {"image": batch})[0]

    sliding_window(volume[:64, :64, :32], spacing, spec, infer)  # warm-up
    t0 = time.perf_counter()
    probs = sliding_window(volume, spacing, spec, infer, batch_size=4, dtype=np.float16)
    labels = refine(volume, probs=probs, theta=float(meta["theta"]), affine=np.diag([*spacing, 1.0])).labels
    return time.perf_counter() - t0, labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=[512, 512, 300])
    ap.add_argument("--spacing", type=float, nargs=3, default=[0.8, 0.8, 1.0])
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped small phantom model")
    args = ap.parse_args()
    shape, spacing = tuple(args.shape), tuple(args.spacing)
    print(f"phantom {shape} spacing {spacing}; {sys.platform}, python {sys.version.split()[0]}", flush=True)
    volume = phantom(shape)
    with tempfile.TemporaryDirectory(prefix="eanno-bench-") as tmp:
        tmp = Path(tmp)
        np.save(tmp / "volume.npy", volume)
        proc = subprocess.run([sys.executable, "-m", "eanno_export.inprocess", str(tmp / "volume.npy"), "--spacing",
                               *map(str, spacing), "--out", str(tmp / "labels.npy"),
                               *(["--checkpoint", str(args.checkpoint)] if args.checkpoint else [])],
                              capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"in-process baseline failed:\n{proc.stderr[-3000:]}")
        inproc = json.loads(proc.stdout.strip().splitlines()[-1])
        ref = np.load(tmp / "labels.npy")
        print(f"in-process: predict {inproc['predict_seconds']:.2f} s + refine {inproc['refine_seconds']:.2f} s "
              f"= {inproc['seconds']:.2f} s ({inproc['threads']} torch threads)", flush=True)
        grpc, http, metrics = free_ports()
        repo = default_repository(tmp / "run", args.checkpoint)
        onnx_s, onnx_labels = inprocess_onnx(repo / "eanno_segmenter" / "1" / "model.onnx", volume, spacing)
        print(f"in-process ONNX Runtime + numpy window + refine: {onnx_s:.2f} s; labels differing from torch: "
              f"{float(np.mean(onnx_labels != ref)):.5%}", flush=True)
        del onnx_labels
        with LocalServer(repo, grpc_port=grpc, http_port=http, metrics_port=metrics, run_dir=tmp / "run") as server:
            client = connect(server.urls["grpc"])
            annotate_remote(client, volume[:64, :64, :32], spacing)  # warm-up: sessions, shm regions
            t0 = time.perf_counter()
            served = annotate_remote(client, volume, spacing)
            served_s = time.perf_counter() - t0
            differ = float(np.mean(served.labels != ref))
            print(f"served (concurrency 1): {served_s:.2f} s; labels differing from in-process: {differ:.5%}", flush=True)
            throughput = {}
            for c in args.concurrency:
                if c == 1:  # the timed single request above is concurrency 1
                    throughput["1"] = 1 / served_s
                    continue
                clients = [connect(server.urls["grpc"]) for _ in range(c)]
                t0 = time.perf_counter()
                with ThreadPoolExecutor(c) as pool:
                    results = list(pool.map(lambda cl: annotate_remote(cl, volume, spacing), clients))
                wall = time.perf_counter() - t0
                assert all(np.array_equal(r.labels, served.labels) for r in results), "concurrent answers differ"
                throughput[str(c)] = c / wall
                print(f"concurrency {c}: {c} volumes in {wall:.2f} s = {c / wall:.4f} volumes/s", flush=True)
    overhead = served_s / inproc["seconds"] - 1
    same = served_s / onnx_s - 1
    print(f"overhead {overhead:+.1%} vs torch in-process (target <= 15%); {same:+.1%} vs the same runtime in-process")
    print(json.dumps({"inprocess_seconds": round(inproc["seconds"], 3), "served_seconds": round(served_s, 3),
                      "overhead": round(overhead, 4), "throughput_by_concurrency": throughput,
                      "inprocess_onnx_seconds": round(onnx_s, 3), "overhead_same_runtime": round(same, 4),
                      "labels_differing_fraction": differ, "shape": list(shape), "spacing": list(spacing)}))


if __name__ == "__main__":
    main()
