"""Paint operations: the anatomy is drawn as an ordered list of world-space shapes, then rasterised."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .shapes import Box, Grid, Wobble, ellipsoid, superellipse, tube
from .tissues import N_TISSUES, Tissue

ALL = None  # `over=ALL`: the shape overwrites whatever lies there


def every_tissue_but(*tissues: int) -> frozenset[int]:
    """The set of tissue ids (lesion instances included) other than the given ones."""
    return frozenset(range(N_TISSUES)) - {int(t) for t in tissues}


@dataclass(frozen=True)
class Slab:
    """A superellipse in (x, y) extruded along z, optionally limited to z in [z0, z1]."""

    tissue: int
    centre: tuple[float, float]
    a: float
    b: float
    power: float = 2.0
    z0: float = -np.inf
    z1: float = np.inf
    over: frozenset[int] | None = ALL


@dataclass(frozen=True)
class Blob:
    """An ellipsoid (rotated, lobulated), optionally cut to the half-space coordinate[axis] >= above."""

    tissue: int
    centre: np.ndarray
    radii: np.ndarray
    rot: np.ndarray | None = None
    wobble: Wobble | None = None
    over: frozenset[int] | None = ALL
    cut: tuple[int, float] | None = None


@dataclass(frozen=True)
class Tube:
    """Spheres along a densely sampled centreline."""

    tissue: int
    points: np.ndarray
    radii: np.ndarray
    over: frozenset[int] | None = ALL


Op = Slab | Blob | Tube


def _write(volume: np.ndarray, box: Box, mask: np.ndarray, tissue: int, over: frozenset[int] | None) -> None:
    """Write tissue where mask is set and (when `over` is given) the current tissue may be overwritten."""
    view = volume[box]
    if over is not None:
        allowed = np.zeros(256, bool)
        allowed[list(over)] = True
        mask = mask & allowed[view]
    view[mask] = tissue


def rasterise(grid: Grid, ops: list[Op]) -> tuple[np.ndarray, dict[int, Box]]:
    """The tissue map of the ops painted in order, and the box each lesion instance was painted in."""
    volume = np.full(grid.shape, Tissue.AIR, np.uint8)
    boxes: dict[int, Box] = {}
    for op in ops:
        if isinstance(op, Slab):
            _paint_slab(volume, grid, op)
            continue
        if isinstance(op, Blob):
            shape = ellipsoid(grid, op.centre, op.radii, op.rot, op.wobble)
            if shape is not None and op.cut is not None:
                box, mask = shape
                axis, level = op.cut
                coord = grid.axis(axis, box[axis]).reshape([-1 if a == axis else 1 for a in range(3)])
                shape = box, mask & (coord >= level)
        else:
            shape = tube(grid, op.points, op.radii)
        if shape is None:
            continue
        _write(volume, shape[0], shape[1], op.tissue, op.over)
        if op.tissue >= Tissue.FIRST_LESION:
            boxes[op.tissue] = shape[0]
    return volume, boxes


def _paint_slab(volume: np.ndarray, grid: Grid, op: Slab) -> None:
    """A z-extruded 2D mask, painted slice range by slice range without building a 3D mask."""
    z = grid.axis(2)
    k = np.flatnonzero((z >= op.z0) & (z <= op.z1))
    if k.size == 0:
        return
    mask2d = superellipse(grid, op.centre, op.a, op.b, op.power)
    ii, jj = np.nonzero(mask2d)
    if ii.size == 0:
        return
    i0, i1, j0, j1 = ii.min(), ii.max() + 1, jj.min(), jj.max() + 1
    box = (slice(i0, i1), slice(j0, j1), slice(int(k[0]), int(k[-1]) + 1))
    mask = np.broadcast_to(mask2d[i0:i1, j0:j1, None], tuple(s.stop - s.start for s in box))
    _write(volume, box, mask, op.tissue, op.over)
