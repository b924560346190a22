"""Time `eanno-client review`'s comparison on a full-size case (512 x 512 x 300, pancreas and lesions).

The baseline is the same comparison on the uncropped grid (every figure computed over all voxels), which
the bounding-box crop in `review.compare` replaces; both give identical figures (checked here).
Last printed line: one JSON object.
"""

from __future__ import annotations

import json
import time
from unittest import mock

import numpy as np

from eanno_client import review


def make_case(shape: tuple[int, int, int] = (512, 512, 300)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model and revised labels (one lesion grown, one deleted, one added) and an anisotropic affine."""
    model = np.zeros(shape, np.uint8)
    model[150:350, 200:330, 100:200] = 1
    for c, lo in [(3, (200, 240, 120)), (4, (280, 250, 150)), (5, (180, 300, 170))]:
        model[lo[0] : lo[0] + 20, lo[1] : lo[1] + 20, lo[2] : lo[2] + 15] = c
    revised = model.copy()
    revised[200:225, 240:260, 120:135] = 3
    revised[280:300, 250:270, 150:165] = 1
    revised[300:310, 210:220, 110:118] = 4
    return model, revised, np.diag([0.8, 0.8, 1.5, 1.0])


def timed(fn, *args) -> tuple[float, dict]:
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def main() -> None:
    model, revised, affine = make_case()
    fast_s, fast = timed(review.compare, model, revised, affine)
    whole = (tuple(slice(0, n) for n in model.shape), [0, 0, 0])
    with mock.patch.object(review, "_labelled_box", return_value=whole):
        base_s, base = timed(review.compare, model, revised, affine)
    assert fast == base, "cropped and whole-grid figures differ"
    print(f"review of one 512x512x300 case: {fast_s:.2f} s (whole grid: {base_s:.2f} s)")
    print(
        json.dumps(
            {
                "case_s": round(fast_s, 3),
                "baseline_whole_grid_s": round(base_s, 3),
                "ratio": round(fast_s / base_s, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
