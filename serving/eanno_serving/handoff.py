"""The window's hand-off to post-processing, region first: the model-grid probabilities around the pancreas
box, the box's CT, the box, and the candidates outside it (rule-1 removals) measured on the model grid.

Outside candidates are measured by `eanno_postproc.refine` on the model grid (with no pancreas there, so
each is "removed: outside the pancreas", as rule 1 decides on the full grid) and drawn on the input grid as
nearest-neighbour blocks of their model voxels: rows (class, start0, stop0, start1, stop1, start2, stop2)
that the client paints into `removed`. Their records say `"grid": "model"`: voxel counts, centroid and box
are those of the drawn blocks; HU figures, diameter and centroid in mm come from the model grid.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cc3d
import numpy as np
from eanno_postproc import Rules, refine
from eanno_postproc.flags import scan_flags
from eanno_postproc.inputs import labels_from_probs

from eanno_serving.region import FIRST_LESION, Region, find_region, nearest_blocks, steps
from eanno_serving.window import SlidingWindow, resample_classes


@dataclass(frozen=True)
class Handoff:
    """What eanno_window sends on: the model-grid probabilities around the box, the box's CT, the box, the
    outside blocks, and `region` (geometry and the outside candidates' records).

    Post-processing resamples the probabilities inside the box itself (`box_probs`): the hand-off through
    shared memory is then the small model-grid crop, not (C, *box) full-resolution maps.
    """

    coarse: np.ndarray  # float32 (C, *crop of the model grid) starting at region["coarse_start"]
    volume: np.ndarray  # the CT inside the box (all post-processing reads of it)
    box: np.ndarray  # int64 (2, 3): start, stop on the input grid; start == stop: no pancreas anywhere
    blocks: np.ndarray  # int32 (k, 7)
    region: dict[str, Any]  # shape, model_shape, coarse_start, dtype, lesions (records outside the box),
    #                         flags (the whole scan's, eanno_postproc.flags, judged on the model grid)

    def region_bytes(self) -> np.ndarray:
        """`region` as a BYTES [1] tensor."""
        return np.array([json.dumps(self.region).encode()], dtype=np.object_)


def coarse_crop(box: np.ndarray, model_shape: tuple[int, ...], input_shape: tuple[int, ...]) -> list[slice]:
    """Model-grid slices holding every model voxel the box's trilinear resampling reads (one voxel spare)."""
    crop = []
    for a, b, m, s in zip(box[0], box[1], model_shape, steps(model_shape, input_shape), strict=True):
        # Voxel i reads model voxels floor(i x s) and the next (axis 0 reads the one before at the last
        # voxel, even when m == n): one spare voxel on each side covers every case.
        crop.append(slice(max(0, math.floor(a * s) - 1), min(m, math.ceil((b - 1) * s) + 2)))
    return crop


def box_probs(coarse: np.ndarray, box: np.ndarray, region: dict[str, Any]) -> np.ndarray:
    """The input-grid probabilities inside `box` from the window's model-grid crop: bit for bit what
    resampling the whole grid gives there (same arithmetic, eanno_serving.window.resample_linear)."""
    full = np.zeros((coarse.shape[0], *region["model_shape"]), dtype=np.float32)
    start = region["coarse_start"]
    # the index is built first: mypy (target 3.10) takes a starred tuple inside [] for 3.11's subscript syntax
    index = (slice(None), *(slice(a, a + n) for a, n in zip(start, coarse.shape[1:], strict=True)))
    full[index] = coarse
    part = [slice(int(a), int(b)) for a, b in zip(box[0], box[1], strict=True)]
    return resample_classes(full, region["shape"], np.dtype(region["dtype"]).type, part)


def model_affine(
    affine: np.ndarray, model_shape: tuple[int, ...], input_shape: tuple[int, ...]
) -> np.ndarray:
    """Voxel -> world of the model grid (input voxel i = model voxel m x (n - 1) / (m - 1), align_corners)."""
    scale = [
        1 / s if s > 0 else n / m
        for s, m, n in zip(steps(model_shape, input_shape), model_shape, input_shape, strict=True)
    ]
    return affine @ np.diag([*scale, 1.0])


def outside_candidates(
    sw: SlidingWindow, coarse: np.ndarray, region: Region, theta: float, rules: Rules, affine: np.ndarray
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Blocks (k, 7) and report records of the lesion candidates in `region.outside`, from the model grid."""
    lab = labels_from_probs(coarse, theta)
    lab[~region.outside | (lab < FIRST_LESION)] = 0
    if not lab.any():
        return np.zeros((0, 7), np.int32), []
    m_affine = model_affine(affine, sw.model_shape, sw.input_shape)
    res = refine(sw.hu, labels=lab, affine=m_affine, rules=rules)
    records = res.report["lesions"]
    # cc3d numbers components in raster order of their first voxel, as refine orders its records.
    cc, n = cc3d.connected_components(lab, connectivity=res.report["connectivity"], return_N=True)
    if n != len(records):
        raise RuntimeError(f"outside candidates: {n} components but {len(records)} records")
    coords = np.nonzero(lab)
    ids = cc[coords].astype(np.int64)
    blocks = nearest_blocks(coords, sw.model_shape, sw.input_shape)
    size = np.prod((blocks[:, 1::2] - blocks[:, 0::2]).astype(np.int64), axis=1)
    drawn = np.bincount(ids, weights=size, minlength=n + 1).astype(np.int64)
    visible = size > 0
    lo = np.full((n + 1, 3), np.iinfo(np.int64).max)
    hi = np.full((n + 1, 3), -1)
    np.minimum.at(lo, ids[visible], blocks[visible][:, 0::2])
    np.maximum.at(hi, ids[visible], blocks[visible][:, 1::2] - 1)
    voxel_ml = abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0
    scale = np.array([1 / max(s, 1e-12) if s > 0 else 0.0 for s in steps(sw.model_shape, sw.input_shape)])
    for k, rec in enumerate(records, start=1):
        centroid = [float(c * s) for c, s in zip(rec["centroid_voxel"], scale, strict=True)]
        first = lo[k] if drawn[k] else np.rint(centroid).astype(np.int64)
        last = hi[k] if drawn[k] else first
        rec.update(
            voxels=int(drawn[k]),
            volume_ml=int(drawn[k]) * voxel_ml,
            centroid_voxel=centroid,
            bbox_voxel={"min": [int(v) for v in first], "max": [int(v) for v in last]},
            grid="model",
        )
    rows = np.concatenate([lab[coords][visible, None].astype(np.int32), blocks[visible]], axis=1)
    return rows, records


def model_grid_flags(
    sw: SlidingWindow,
    coarse: np.ndarray,
    theta: float,
    rules: Rules,
    affine: np.ndarray,
    meta: Mapping[str, Any] | None,
) -> list[str]:
    """The whole scan's flags from the model grid: the only place that still sees the full field of view
    (post-processing gets the pancreas box); the organ is the model-grid refine's, as rules leave it."""
    m_affine = model_affine(affine, sw.model_shape, sw.input_shape)
    labels = refine(sw.hu, probs=coarse, theta=theta, affine=m_affine, rules=rules).labels
    return scan_flags(
        sw.hu, labels, [float(s) for s in np.linalg.norm(m_affine[:3, :3], axis=0)], rules, meta
    )


def handoff(
    sw: SlidingWindow,
    volume: np.ndarray,
    dtype: type,
    theta: float,
    rules: Rules,
    affine: np.ndarray,
    meta: Mapping[str, Any] | None = None,
) -> Handoff:
    """Region first: find the pancreas box on the model grid, measure what lies outside it; the flags."""
    coarse = sw.coarse(dtype)
    region = find_region(coarse, sw.input_shape, theta, rules.pancreas_dilation_voxels)
    blocks, outside = outside_candidates(sw, coarse, region, theta, rules, affine)
    box = np.array([region.start, region.stop], dtype=np.int64)
    if region.empty:  # no pancreas anywhere: nothing at full resolution
        crop = [slice(0, 0)] * 3
        ct = np.zeros((0, 0, 0), dtype=volume.dtype)
    else:
        crop = coarse_crop(box, sw.model_shape, sw.input_shape)
        ct = np.ascontiguousarray(volume[region.slices])
    every_class = (slice(None), *crop)  # named: mypy misreads a starred subscript before 3.11
    info = {
        "shape": list(sw.input_shape),
        "model_shape": list(sw.model_shape),
        "coarse_start": [c.start for c in crop],
        "dtype": np.dtype(dtype).name,
        "lesions": outside,
        "flags": model_grid_flags(sw, coarse, theta, rules, affine, meta),
    }
    return Handoff(np.ascontiguousarray(coarse[every_class]), ct, box, blocks, info)
