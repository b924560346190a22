"""The window's largest own cost under load: SlidingWindow.result (6 class maps back to the input grid).

Profiling eanno_window with py-spy during `eanno-client loadtest` put most of its own (non-segmenter)
time in SlidingWindow.result: trilinear upsampling of every class map from the model grid to the input
grid plus the float16 hand-off. This times result() for a 512 x 512 x 300 case (0.8 x 0.8 x 2.0 mm,
model grid 2.5 mm) with resample_linear's passes in fixed axis order 0, 1, 2 (before) and in order of
growth, smallest first (after: eanno_serving.window), alternating, --repeats times each.
The last printed line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from eanno_serving import window as W


def fixed_order(x: np.ndarray, shape) -> np.ndarray:
    """resample_linear as it was: axes 0, 1, 2 in turn."""
    out = np.asarray(x, dtype=np.float32)
    for axis, n in enumerate(shape):
        out = W._lerp_axis(out, int(n), axis)
    return out if out is not x else out.copy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=[512, 512, 300])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    spec = W.WindowSpec(spacing=(2.5, 2.5, 2.5), patch_size=(48, 48, 48), clip=(-1000, 1000), mean=0, std=500)
    sw = W.SlidingWindow(np.zeros(args.shape, np.int16), (0.8, 0.8, 2.0), spec)
    sw.acc[:] = np.random.default_rng(0).random(sw.acc.shape, dtype=np.float32)
    sw.wsum[:] = 1
    library = W.resample_linear
    times: dict[str, list[float]] = {"before": [], "after": []}
    outs = {}
    for _ in range(args.repeats):
        for name, fn in (("before", fixed_order), ("after", library)):
            W.resample_linear = fn  # result() looks the function up in the module at call time
            t0 = time.perf_counter()
            outs[name] = sw.result(np.float16)
            times[name].append(time.perf_counter() - t0)
    W.resample_linear = library
    diff = float(np.abs(outs["before"].astype(np.float32) - outs["after"].astype(np.float32)).max())
    before, after = statistics.median(times["before"]), statistics.median(times["after"])
    r = {"shape": args.shape, "model_shape": list(sw.model_shape), "before_s": round(before, 2),
         "after_s": round(after, 2), "runs": {k: [round(v, 2) for v in vs] for k, vs in times.items()},
         "speedup": round(before / after, 2), "max_abs_diff_fp16": diff}
    print(f"SlidingWindow.result {args.shape} from {list(sw.model_shape)}: before {before:.2f} s, after {after:.2f} s "
          f"(x{before / after:.2f}); max |diff| {diff:.2g} (float16 rounding)")
    print(json.dumps(r))


if __name__ == "__main__":
    main()
