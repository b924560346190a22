"""Skipping air-only tiles (issue 15, item 1): what it would save and what it would change. A measurement.

A tile whose every voxel (clipped HU on the model grid, padding included) is <= --air-hu is not sent to the
network; its contribution to the Gaussian stitching becomes pure background (p0 = 1) instead. Only the
model-grid voxels of skipped tiles can change (every other voxel's weighted sum holds no skipped tile), and
those are air by the test; on the input grid the trilinear resampling reaches one model voxel further.
Compares, for the 512 x 512 x 300 bench phantom and the real CT (../shared/data): tiles skipped, network
seconds (medians of --rounds interleaved rounds), and the full-grid refine's labels and removed map (the
served region-first path equals them inside its box) with and without skipping: voxels that differ, and the
highest input HU among them. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_serving import phantom
from eanno_postproc import refine
from eanno_serving.default import default_repository
from eanno_serving.onnx_session import onnx_meta, open_session
from eanno_serving.window import SlidingWindow, WindowSpec

REAL_CT = Path(__file__).resolve().parents[3] / "shared" / "data" / "ct-real-small" / "example_ct_sm.nii.gz"


def run(
    session, spec: WindowSpec, volume: np.ndarray, spacing, air_hu: float | None
) -> tuple[SlidingWindow, float, int]:
    """The window with tiles skipped where all voxels are <= air_hu (None: none skipped); (window, network s, skipped)."""
    sw = SlidingWindow(volume, spacing, spec)
    air = None if air_hu is None else np.float32((max(air_hu, spec.clip[0]) - spec.mean) / spec.std)
    background = np.zeros((spec.num_classes, *spec.patch_size), np.float32)
    background[0] = 1.0
    net, skipped = 0.0, 0
    for starts, batch in sw.batches(4):
        keep = [i for i in range(len(starts)) if air is None or batch[i].max() > air]
        probs = np.repeat(background[None], len(starts), axis=0)
        if keep:
            t0 = time.perf_counter()
            probs[keep] = session.run(["probs"], {"image": np.ascontiguousarray(batch[keep])})[0]
            net += time.perf_counter() - t0
        skipped += len(starts) - len(keep)
        sw.add(starts, probs)
    return sw, net, skipped


def compare(session, meta, volume: np.ndarray, spacing, air_hu: float, rounds: int) -> dict:
    """Figures for one volume."""
    spec = WindowSpec.from_meta(meta)
    theta, affine = float(meta["theta"]), np.diag([*spacing, 1.0])
    times: dict[str, list[float]] = {"all": [], "skip": []}
    out: dict[str, tuple[Any, ...]] = {}
    for r in range(rounds):
        for leg in ["all", "skip"] if r % 2 == 0 else ["skip", "all"]:
            sw, net, skipped = run(session, spec, volume, spacing, None if leg == "all" else air_hu)
            times[leg].append(net)
            if r == 0:
                res = refine(volume, probs=sw.result(np.float16), theta=theta, affine=affine)
                out[leg] = (res.labels, res.removed, sw.coarse(), skipped, len(sw.starts))
    la, ra, ca, _, n = out["all"]
    ls, rs, cs, skipped, _ = out["skip"]
    changed_model = np.any(ca != cs, axis=0)
    hu = sw.hu  # clipped HU on the model grid
    air = np.float32((max(air_hu, spec.clip[0]) - spec.mean) / spec.std)
    fractions = sorted(float((sw.image[sw._window(s)] <= air).mean()) for s in sw.starts)
    diff = (la != ls) | (ra != rs)
    return {
        "shape": list(volume.shape),
        "model_shape": list(sw.model_shape),
        "patch": list(spec.patch_size),
        "tiles": n,
        "tile_air_fraction_max": round(fractions[-1], 3),
        "tiles_air_fraction_ge_0.9": sum(f >= 0.9 for f in fractions),
        "tile_air_fraction_median": round(statistics.median(fractions), 3),
        "skipped": skipped,
        "skipped_fraction": round(skipped / n, 3),
        "network_s_all": round(statistics.median(times["all"]), 2),
        "network_s_skip": round(statistics.median(times["skip"]), 2),
        "rounds_all": [round(t, 2) for t in times["all"]],
        "rounds_skip": [round(t, 2) for t in times["skip"]],
        "model_voxels_changed": int(changed_model.sum()),
        "model_hu_max_changed": float(hu[changed_model].max()) if changed_model.any() else None,
        "labels_voxels_differ": int((la != ls).sum()),
        "removed_voxels_differ": int((ra != rs).sum()),
        "input_hu_max_where_differ": int(volume[diff].max()) if diff.any() else None,
        "classes_lost": sorted(set(np.unique(la[diff]).tolist()) - {0}) if diff.any() else [],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=[512, 512, 300])
    ap.add_argument("--air-hu", type=float, default=-800.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    threads = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="eanno-air-") as tmp:
        repo = default_repository(Path(tmp) / "run", None)
        session, _ = open_session(repo / "eanno_segmenter" / "1" / "model.onnx")
        meta = onnx_meta(session)
        figures = {
            "air_hu": args.air_hu,
            "threads": threads,
            "phantom": compare(
                session, meta, phantom(tuple(args.shape)), (0.8, 0.8, 1.0), args.air_hu, args.rounds
            ),
        }
        if REAL_CT.is_file():
            import nibabel as nib

            img = nib.as_closest_canonical(nib.load(str(REAL_CT)))
            figures["real_ct"] = compare(
                session,
                meta,
                np.asarray(img.dataobj, np.int16),
                tuple(float(z) for z in img.header.get_zooms()[:3]),
                args.air_hu,
                args.rounds,
            )
        else:
            figures["real_ct"] = f"skipped: {REAL_CT} absent"
    for k in ("phantom", "real_ct"):
        print(k, figures[k])
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
