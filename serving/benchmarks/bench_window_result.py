"""The window's largest own cost under load: SlidingWindow.result (6 class maps back to the input grid).

Profiling eanno_window with py-spy during `eanno-client loadtest` put most of its own (non-segmenter)
time in SlidingWindow.result: trilinear upsampling of every class map from the model grid to the input
grid plus the float16 hand-off. This times result() for a 512 x 512 x 300 case (0.8 x 0.8 x 2.0 mm,
model grid 2.5 mm) with three whole-volume 1D passes, one class at a time, then a float16 copy (before)
and with eanno_serving.window's slab-wise, multi-threaded resample_linear that writes float16 in place
(after), alternating, --repeats times each.
The last printed line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from eanno_serving import window as W


def whole_volume(
    x: np.ndarray, shape, out: np.ndarray | None = None, threads: int | None = None
) -> np.ndarray:
    """resample_linear as it was: three whole-volume passes (smallest growth first), then a copy into out."""
    y = np.asarray(x, dtype=np.float32)
    for axis in sorted(range(3), key=lambda a: int(shape[a]) / y.shape[a]):
        y = W._lerp_axis(y, int(shape[axis]), axis)
    if out is None:
        return y
    out[...] = y
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=[512, 512, 300])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    spec = W.WindowSpec(spacing=(2.5, 2.5, 2.5), patch_size=(48, 48, 48), clip=(-1000, 1000), mean=0, std=500)
    sw = W.SlidingWindow(np.zeros(args.shape, np.int16), (0.8, 0.8, 2.0), spec)
    # Softmax of smooth random logits: like a network's output, most class maps are near 0 almost
    # everywhere (values down to 1e-30, which float16 and denormal arithmetic make slow).
    coarse = np.random.default_rng(0).normal(
        0, 12, size=(sw.acc.shape[0], *(n // 8 + 2 for n in sw.acc.shape[1:]))
    )
    logits = np.stack([W.resample_linear(c, sw.acc.shape[1:]) for c in coarse.astype(np.float32)])
    e = np.exp(logits - logits.max(0, keepdims=True))
    sw.acc[:] = e / e.sum(0, keepdims=True)
    sw.wsum[:] = 1
    library = W.resample_linear
    times: dict[str, list[float]] = {"before": [], "after": []}
    outs = {}
    for _ in range(args.repeats):
        for name, fn in (("before", whole_volume), ("after", library)):
            W.resample_linear = fn  # type: ignore[assignment]  # result() looks it up in the module at call time
            t0 = time.perf_counter()
            outs[name] = sw.result(np.float16)
            times[name].append(time.perf_counter() - t0)
    W.resample_linear = library
    diff = float(np.abs(outs["before"].astype(np.float32) - outs["after"].astype(np.float32)).max())
    before, after = statistics.median(times["before"]), statistics.median(times["after"])
    r = {
        "shape": args.shape,
        "model_shape": list(sw.model_shape),
        "before_s": round(before, 2),
        "after_s": round(after, 2),
        "runs": {k: [round(v, 2) for v in vs] for k, vs in times.items()},
        "speedup": round(before / after, 2),
        "max_abs_diff_fp16": diff,
    }
    print(
        f"SlidingWindow.result {args.shape} from {list(sw.model_shape)}: before {before:.2f} s, after {after:.2f} s "
        f"(x{before / after:.2f}); max |diff| {diff:.2g} (float16 rounding)"
    )
    print(json.dumps(r))


if __name__ == "__main__":
    main()
