"""The segmenter's network on this CPU: ONNX Runtime CPU time per patch by batch size and session option.

CPU time of the calling thread (`time.thread_time`) with one intra-op thread, as the CPU flavor's instances
run: steady on a loaded machine, where wall time is not. Patches are the window's own tiles of the
serving benchmark's volume (a .npy, e.g. from `python -m eanno_export.bench_phantom`, or this folder's
ellipses). Also: two sessions at once (the server's two instances) against one alone, and whether the
outputs are bit-identical at every batch size. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from bench_serving import phantom
from eanno_serving.onnx_session import onnx_meta
from eanno_serving.window import SlidingWindow, WindowSpec

LEVELS = {
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def session(onnx: Path, level: str = "all", arena: bool = True) -> Any:
    """One single-threaded, non-spinning CPU session (the CPU flavor's instance)."""
    o = ort.SessionOptions()
    o.intra_op_num_threads = o.inter_op_num_threads = 1
    o.add_session_config_entry("session.intra_op.allow_spinning", "0")
    o.graph_optimization_level = LEVELS[level]
    o.enable_cpu_mem_arena = arena
    return ort.InferenceSession(str(onnx), o, providers=["CPUExecutionProvider"])


def run(s: Any, tiles: np.ndarray, batch: int) -> tuple[float, np.ndarray]:
    """CPU ms per patch of this thread, and the probabilities."""
    t = time.thread_time()
    out = [s.run(["probs"], {"image": tiles[i : i + batch]})[0] for i in range(0, len(tiles), batch)]
    return (time.thread_time() - t) / len(tiles) * 1000, np.concatenate(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("onnx", type=Path, help="the segmenter, e.g. RUN/repository/eanno_segmenter/1/model.onnx")
    ap.add_argument("--volume", type=Path, help=".npy int16 volume (default: this folder's ellipses)")
    ap.add_argument("--spacing", type=float, nargs=3, default=[0.8, 0.8, 1.0])
    ap.add_argument("--patches", type=int, default=16, help="patches timed per setting and round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    volume = np.load(args.volume) if args.volume else phantom((512, 512, 300))
    spec = WindowSpec.from_meta(onnx_meta(session(args.onnx)))
    sw = SlidingWindow(volume, args.spacing, spec)
    every = np.concatenate([b for _, b in sw.batches(8)])
    middle = len(every) // 2 - args.patches // 2  # tiles through the body, not the corners
    tiles = every[middle : middle + args.patches].copy()
    settings = {f"batch {b}": (session(args.onnx), b) for b in (1, 2, 4, 8)}
    settings |= {f"batch 4, optimisation {k}": (session(args.onnx, k), 4) for k in ("basic", "extended")}
    settings["batch 4, no memory arena"] = (session(args.onnx, arena=False), 4)
    ms: dict[str, list[float]] = {k: [] for k in settings}
    outputs = {k: run(s, tiles, b)[1] for k, (s, b) in settings.items()}  # warm-up, and outputs compared
    pair: list[float] = []
    s1, s2 = settings["batch 1"][0], settings["batch 2"][0]
    for _ in range(args.rounds):  # interleaved: every setting once per round
        for k, (s, b) in settings.items():
            ms[k].append(run(s, tiles, b)[0])
        got: list[float] = []

        def one(s: Any, got: list[float] = got) -> None:
            got.append(run(s, tiles, 1)[0])

        threads = [threading.Thread(target=one, args=(s,)) for s in (s1, s2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        pair.extend(got)
    ref = outputs["batch 1"]
    result = {k: round(statistics.median(v), 1) for k, v in ms.items()}
    result["two sessions at once, batch 1"] = round(statistics.median(pair), 1)
    for k, v in ms.items():
        print(f"{k}: {statistics.median(v):.1f} ms CPU per patch ({min(v):.1f}-{max(v):.1f})")
    print(
        f"two sessions at once, batch 1: {statistics.median(pair):.1f} ms ({min(pair):.1f}-{max(pair):.1f})"
    )
    identical = {k: bool(np.array_equal(v, ref)) for k, v in outputs.items()}
    print(f"outputs bit-identical to batch 1: {identical}")
    n = len(sw.starts)
    floor = n * result["batch 1"] / 1000 / 2
    print(f"{n} patches for this volume: network >= {floor:.2f} s on 2 cores")
    print(
        json.dumps(
            {"ms_cpu_per_patch": result, "identical": identical, "patches": n, "floor_2_cores_s": floor}
        )
    )


if __name__ == "__main__":
    main()
