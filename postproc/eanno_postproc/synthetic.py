"""A deterministic synthetic case for demos, tests and benchmarks: a pancreas tube, its duct, and
lesion candidates of every kind the rules decide, each with the decision it must get.

Not anatomy: a body cylinder of soft tissue, a fat sheath around a bent tube of parenchyma, a duct
along the tube's axis. Candidates are balls placed so that exactly one rule decides each:
kept (in the parenchyma), outside (far away), contrast (beside the pancreas with HU outside the class
window: fat for cyst/PNET, an enhancing vessel for PDAC), duct (touching the duct; PDAC stays kept)
and large (PNET above its volume-ratio limit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from eanno_contracts.labels import CYST, DUCT, LESION_CLASSES, PANCREAS, PDAC, PNET

KINDS = ("kept", "outside", "contrast", "duct", "kept", "outside", "contrast", "duct", "large")
_HU = {"body": 40, "fat": -100, "pancreas": 100, "duct": 15, "vessel": 300}
_LESION_HU = {PDAC: 40, CYST: 15, PNET: 150}  # inside every class window
_DUCT_RADIUS = 1.0
_PROB_FLOOR = 1e-4  # probability of every non-winning class (below the default theta)


@dataclass
class SyntheticCase:
    """Arrays of one case and what refine must decide for each placed candidate."""

    ct: np.ndarray  # int16 HU
    labels: np.ndarray  # uint8, classes 0-5
    affine: np.ndarray
    expected: list[dict[str, Any]] = field(default_factory=list)  # kind, class_id, centre, decision
    probs: np.ndarray | None = None


def make_case(
    shape: tuple[int, int, int] = (96, 96, 64),
    n_candidates: int = 9,
    seed: int = 0,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.5),
    probs_dtype: type | None = None,
    speckles: int = 0,
) -> SyntheticCase:
    """Build a case; `probs_dtype` adds (6, *shape) probabilities, `speckles` adds low-probability lesion voxels."""
    rng = np.random.default_rng(seed)
    ni, nj, nk = shape
    ct = np.full(shape, -1000, dtype=np.int16)
    ii, jj = np.ogrid[:ni, :nj]
    body = ((ii - ni / 2) / (0.47 * ni)) ** 2 + ((jj - nj / 2) / (0.40 * nj)) ** 2 <= 1
    ct[body] = _HU["body"]
    labels = np.zeros(shape, dtype=np.uint8)

    radius = max(5.0, 0.07 * min(ni, nj))  # tube radius (voxels); >= 5 leaves room for kept lesions
    centre = _tube_centre(shape)
    i0, i1 = int(0.25 * ni), int(0.75 * ni)
    _tube(ct, labels, centre, i0, i1, radius + 3, hu=_HU["fat"], label=None)
    _tube(ct, labels, centre, i0, i1, radius, hu=_HU["pancreas"], label=PANCREAS)
    _tube(ct, labels, centre, i0, i1, _DUCT_RADIUS, hu=_HU["duct"], label=DUCT)

    expected: list[dict[str, Any]] = []
    placed: list[tuple[np.ndarray, float]] = []
    parenchyma = int(np.count_nonzero(labels == PANCREAS))
    for n in range(n_candidates):
        kind = KINDS[n % len(KINDS)]
        cls = PNET if kind == "large" else LESION_CLASSES[(n // len(KINDS) + n) % 3]
        spot = _place(kind, cls, rng, shape, centre, i0, i1, radius, parenchyma, placed, body)
        if spot is None:
            continue
        pos, r, hu, decision = spot
        _ball(ct, labels, pos, r, hu, cls)
        placed.append((pos, r))
        expected.append(
            {"kind": kind, "class_id": cls, "centre": [int(round(v)) for v in pos], "decision": decision}
        )
    ct += rng.integers(-8, 9, size=shape, dtype=np.int16)  # noise that moves no mean across a window edge
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = [-0.5 * s * n for s, n in zip(spacing, shape, strict=True)]
    probs = None if probs_dtype is None else _probs(labels, probs_dtype, speckles, rng)
    return SyntheticCase(ct=ct, labels=labels, affine=affine, expected=expected, probs=probs)


def _tube_centre(shape: tuple[int, int, int]) -> np.ndarray:
    """(j, k) of the tube's axis for every i: a gentle bend."""
    ni, nj, nk = shape
    i = np.arange(ni)
    return np.stack([nj * (0.5 + 0.08 * np.sin(2 * np.pi * i / ni)), np.full(ni, nk / 2)], axis=1)


def _tube(ct, labels, centre, i0, i1, r, hu, label) -> None:
    ri = int(np.ceil(r)) + 1
    for i in range(i0, i1):  # one 2D disc per slice of the tube (tens of slices, not voxels)
        cj, ck = centre[i]
        js = slice(max(0, int(cj) - ri), int(cj) + ri + 1)
        ks = slice(max(0, int(ck) - ri), int(ck) + ri + 1)
        jj, kk = np.ogrid[js, ks]
        disc = (jj - cj) ** 2 + (kk - ck) ** 2 <= r * r
        ct[i, js, ks][disc] = hu
        if label is not None:
            labels[i, js, ks][disc] = label


def _ball(ct, labels, pos, r, hu, cls) -> None:
    box = tuple(slice(max(0, int(p - r) - 1), int(p + r) + 2) for p in pos)
    grid = np.ogrid[box]
    mask = sum((g - p) ** 2 for g, p in zip(grid, pos, strict=True)) <= r * r
    labels[box][mask] = cls
    ct[box][mask] = hu


def _place(kind, cls, rng, shape, centre, i0, i1, radius, parenchyma, placed, body):
    """(position, radius, HU, expected decision) for one candidate, or None if no free spot was found."""
    for _ in range(200):
        i = int(rng.integers(i0 + 4, i1 - 4))
        cj, ck = centre[i]
        angle = rng.uniform(0, 2 * np.pi)
        direction = np.array([0.0, np.cos(angle), np.sin(angle)])
        # Distances from the tube's axis leave whole voxels of margin: a ball meant to touch overlaps
        # what it touches by half a voxel, one meant not to touch keeps >= 2.5 voxels away.
        small = max(1.0, radius / 7)
        if kind == "kept":
            r = small
            pos = np.array([i, cj, ck]) + direction * max(radius - r / 2, _DUCT_RADIUS + r + 2.5)
            hu, decision = _LESION_HU[cls], "kept"
        elif kind == "duct":
            r = small
            pos, hu = np.array([i, cj, ck]) + direction * (_DUCT_RADIUS + r - 0.5), _LESION_HU[cls]
            decision = "kept" if cls == PDAC else "relabelled_duct"
        elif kind == "contrast":
            r = 1.5
            pos = np.array([i, cj, ck]) + direction * (radius + r - 0.5)  # in the fat sheath, touching
            hu, decision = (_HU["vessel"] if cls == PDAC else _HU["fat"]), "relabelled_contrast"
        elif kind == "large":
            r = (0.6 * parenchyma * 3 / (4 * np.pi)) ** (1 / 3)  # ~60% of the parenchyma > PNET's 46%
            pos = np.array([i, cj, ck]) + direction * (radius + r - 1)
            hu, decision = _LESION_HU[cls], "relabelled_volume_ratio"
        else:  # outside: anywhere in the body, far from the pancreas
            r = float(rng.uniform(1.5, 3.5))
            pos = np.array([rng.uniform(r + 2, s - r - 3) for s in shape])
            hu, decision = _LESION_HU[cls], "removed_outside_pancreas"
            pi = int(np.clip(pos[0], 0, shape[0] - 1))
            near_tube = (
                i0 - r - 6 <= pos[0] <= i1 + r + 6 and np.hypot(*(pos[1:] - centre[pi])) < radius + r + 8
            )
            if near_tube or not body[int(pos[0]), int(pos[1])]:
                continue
        if any(np.linalg.norm(pos - q) < r + rq + 3 for q, rq in placed):
            continue
        if np.any(pos - r < 1) or np.any(pos + r > np.array(shape) - 2):
            continue
        return pos, r, hu, decision
    return None


def _probs(labels: np.ndarray, dtype: type, speckles: int, rng: np.random.Generator) -> np.ndarray:
    """One-hot-like probabilities of `labels`; speckles get a lesion probability just above 0.003."""
    probs = np.full((6, *labels.shape), _PROB_FLOOR, dtype=dtype)
    top = np.asarray(1 - 5 * _PROB_FLOOR, dtype=dtype)
    for c in range(6):  # six whole-volume passes, one per class
        np.copyto(probs[c], top, where=labels == c)
    if speckles:
        flat = rng.choice(labels.size, size=speckles, replace=False)
        idx = np.unravel_index(flat, labels.shape)
        cls = rng.integers(PDAC, PNET + 1, size=speckles)  # a lesion class id per speckle
        keep = labels[idx] == 0  # only in background, so the label map's lesions stay as they are
        for c in LESION_CLASSES:
            sel = tuple(a[keep & (cls == c)] for a in idx)
            lesion_at, background_at = (
                (c, *sel),
                (0, *sel),
            )  # named: mypy misreads a starred subscript before 3.11
            probs[lesion_at] = 0.01
            probs[background_at] = 1 - 0.01 - 4 * _PROB_FLOOR
    return probs
