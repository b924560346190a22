"""Predictor throughput of the small configuration on this CPU.

Prints patches/s of the network alone (batch 1 and 2), the seconds the full sliding window takes for a
512 x 512 x 300 phantom at its native spacing, and, as the baseline measured in the same run, the time
of one forward pass over the same number of patches without stitching (the window's overhead ratio).
Last line: one JSON object. Uses the shipped weights when present, else the small config's random init
(speed does not depend on the weights).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch
from eanno_contracts.geometry import target_shape, tile_starts
from eanno_training.checkpoint import CheckpointError, load_checkpoint, make_meta
from eanno_training.models import build_model
from eanno_training.phantoms import generate_phantom
from eanno_training.predictor import Predictor
from eanno_training.settings import load_run_config


def small_model() -> tuple[torch.nn.Module, dict, str]:
    """The shipped model, or the small config untrained."""
    try:
        ck = load_checkpoint()
        return ck.build(), ck.meta, "shipped"
    except CheckpointError:
        cfg = load_run_config(None)
        d = cfg.data
        meta = make_meta(["c"] * 6, d.spacing, cfg.model.patch_size, d.mean, d.std, clip=d.clip)
        return build_model(cfg.model).eval(), meta, "small config (random weights)"


def patches_per_second(model: torch.nn.Module, patch: tuple[int, ...], batch: int, repeats: int) -> float:
    """Network-only throughput."""
    x = torch.randn(batch, 1, *patch)
    with torch.inference_mode():
        model(x)  # warm-up
        t = time.perf_counter()
        for _ in range(repeats):
            model(x)
    return batch * repeats / (time.perf_counter() - t)


def main() -> None:
    """Run the benchmark and print figures, last line JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", nargs=3, type=int, default=[512, 512, 300], help="phantom shape (voxels)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, meta, source = small_model()
    patch = tuple(meta["patch_size"])
    pps = {b: patches_per_second(model, patch, b, args.repeats) for b in (1, 2)}
    print(f"model: {source}, patch {patch}, {torch.get_num_threads()} threads", flush=True)
    print(f"network: {pps[1]:.2f} patches/s (batch 1), {pps[2]:.2f} patches/s (batch 2)", flush=True)
    ph = generate_phantom(1, shape=args.shape, spacing=(0.8, 0.8, 1.0), orientation="RAS")
    print(f"phantom {args.shape} generated", flush=True)
    pred = Predictor(model, meta, batch_size=2)
    t = time.perf_counter()
    probs = pred.predict(ph.ct, ph.spacing)
    window_s = time.perf_counter() - t
    assert probs.shape == (6, *args.shape)
    grid = target_shape(ph.ct.shape, ph.spacing, meta["spacing"])
    padded = [max(g, p) for g, p in zip(grid, patch, strict=True)]
    n_patches = int(np.prod([len(tile_starts(n, p, pred.step)) for n, p in zip(padded, patch, strict=True)]))
    network_s = n_patches / pps[2]
    result = {
        "model": source,
        "patch": list(patch),
        "model_spacing": meta["spacing"],
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "patches_per_s_b1": round(pps[1], 2),
        "patches_per_s_b2": round(pps[2], 2),
        "phantom_shape": args.shape,
        "phantom_spacing": [0.8, 0.8, 1.0],
        "model_grid": list(grid),
        "patches": n_patches,
        "window_seconds": round(window_s, 2),
        "network_only_seconds": round(network_s, 2),
        "window_over_network": round(window_s / network_s, 2),
    }
    print(f"{args.shape} phantom at 0.8 x 0.8 x 1.0 mm -> model grid {grid}, {n_patches} patches")
    print(
        f"sliding window {window_s:.2f} s; the network alone on those patches {network_s:.2f} s "
        f"(ratio {result['window_over_network']})"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
