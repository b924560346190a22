"""Rasterising world-space shapes (ellipsoids, irregular blobs, tubes) onto a canonical RAS voxel grid.

Every shape is evaluated only inside its own bounding box so that a 512 x 512 x 300 grid stays fast;
shapes are hand-written here because they are a few lines of broadcasting and no library offers them
on an arbitrary anisotropic grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Box = tuple[slice, slice, slice]


@dataclass(frozen=True)
class Grid:
    """A canonical (RAS+, axis-aligned) voxel grid: voxel (i, j, k) sits at origin + (i, j, k) * spacing mm."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]

    @property
    def affine(self) -> np.ndarray:
        """The 4x4 voxel -> world (mm) matrix."""
        aff = np.diag([*self.spacing, 1.0])
        aff[:3, 3] = self.origin
        return aff

    def axis(self, a: int, sl: slice | None = None) -> np.ndarray:
        """World coordinates (mm, float32) of the voxel centres along axis a (optionally a slice of them)."""
        idx = np.arange(self.shape[a]) if sl is None else np.arange(sl.start, sl.stop)
        return (self.origin[a] + idx * self.spacing[a]).astype(np.float32)

    def box(self, lo: np.ndarray, hi: np.ndarray) -> Box | None:
        """Index slices of the voxels whose centres fall in the world box [lo, hi]; None when empty."""
        out = []
        for a in range(3):
            start = int(np.ceil((lo[a] - self.origin[a]) / self.spacing[a]))
            stop = int(np.floor((hi[a] - self.origin[a]) / self.spacing[a])) + 1
            start, stop = max(start, 0), min(stop, self.shape[a])
            if start >= stop:
                return None
            out.append(slice(start, stop))
        return tuple(out)  # type: ignore[return-value]

    def offsets(self, box: Box, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable world offsets (x, y, z) from `centre` over a box."""
        x = self.axis(0, box[0]) - np.float32(centre[0])
        y = self.axis(1, box[1]) - np.float32(centre[1])
        z = self.axis(2, box[2]) - np.float32(centre[2])
        return x[:, None, None], y[None, :, None], z[None, None, :]


def rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """A random rotation matrix with angles up to max_deg about each axis."""
    ax, ay, az = np.deg2rad(rng.uniform(-max_deg, max_deg, 3))
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass(frozen=True)
class Wobble:
    """Radial perturbation r(u) = 1 + sum_k amp_k sin(freq_k . u + phase_k) of a unit direction u."""

    amps: np.ndarray
    freqs: np.ndarray
    phases: np.ndarray

    @classmethod
    def random(cls, rng: np.random.Generator, amplitude: float, modes: int = 4) -> Wobble:
        """Low-order random lobulation with a total amplitude of about `amplitude`."""
        amps = rng.uniform(0.5, 1.0, modes) * amplitude / np.sqrt(modes)
        freqs = rng.normal(0.0, 2.5, (modes, 3))
        return cls(amps, freqs, rng.uniform(0, 2 * np.pi, modes))


def ellipsoid(
    grid: Grid,
    centre: np.ndarray,
    radii: np.ndarray,
    rot: np.ndarray | None = None,
    wobble: Wobble | None = None,
) -> tuple[Box, np.ndarray] | None:
    """Box and boolean mask of an (optionally rotated, optionally lobulated) ellipsoid; None when off-grid.

    Per (x, y) column an ellipsoid is one z interval (a quadratic in z), so the 3D work is two comparisons;
    a lobulated one is exact too: voxels inside the smallest possible ellipsoid are in, outside the largest
    out, and only the shell between is evaluated point by point. This keeps a liver at 0.7 mm cheap.
    """
    radii = np.asarray(radii, np.float64)
    spread = float(np.abs(wobble.amps).sum()) if wobble else 0.0
    ext = np.full(3, radii.max() * (1 + spread)) if rot is not None else radii * (1 + spread)
    box = grid.box(centre - ext, centre + ext)
    if box is None:
        return None
    x, y, z = (grid.axis(a, box[a]).astype(np.float64) - centre[a] for a in range(3))
    rt = np.eye(3) if rot is None else np.asarray(rot, np.float64).T  # world offset -> local frame
    w = [rt[k, 0] * x[:, None] + rt[k, 1] * y[None, :] for k in range(3)]  # local coords at z = 0, per column
    zz = z.astype(np.float32)[None, None, :]

    def inside(scale: float) -> np.ndarray:
        rs2 = (radii * scale) ** 2
        a = float(np.sum(rt[:, 2] ** 2 / rs2))
        b = sum(w[k] * (rt[k, 2] / rs2[k]) for k in range(3))
        c = sum(w[k] ** 2 / rs2[k] for k in range(3)) - 1.0
        root = np.sqrt(np.maximum(b * b - a * c, 0.0))
        lo = np.where(b * b - a * c >= 0, (-b - root) / a, np.inf).astype(np.float32)
        hi = ((-b + root) / a).astype(np.float32)
        return (zz >= lo[:, :, None]) & (zz <= hi[:, :, None])

    if wobble is None:
        return box, inside(1.0)
    mask = inside(max(1.0 - spread, 1e-3))
    i, j, k = np.nonzero(inside(1.0 + spread) & ~mask)
    q = [w[r][i, j] + rt[r, 2] * z[k] for r in range(3)]
    r2 = sum((q[r] / radii[r]) ** 2 for r in range(3))
    norm = np.sqrt(np.maximum(q[0] ** 2 + q[1] ** 2 + q[2] ** 2, 1e-9))
    scale = np.ones_like(r2)
    for amp, f, ph in zip(wobble.amps, wobble.freqs, wobble.phases, strict=True):
        scale += amp * np.sin((f[0] * q[0] + f[1] * q[1] + f[2] * q[2]) / norm + ph)
    keep = r2 <= scale**2
    mask[i[keep], j[keep], k[keep]] = True
    return box, mask


def tube(grid: Grid, points: np.ndarray, radii: np.ndarray) -> tuple[Box, np.ndarray] | None:
    """Box and mask of the union of spheres along a densely sampled centreline (a tube of varying radius)."""
    points = np.asarray(points, np.float64)
    radii = np.broadcast_to(np.asarray(radii, np.float64), (len(points),))
    box = grid.box((points - radii[:, None]).min(0), (points + radii[:, None]).max(0))
    if box is None:
        return None
    origin, spacing = np.asarray(grid.origin), np.asarray(grid.spacing)
    starts = np.array([b.start for b in box])
    stops = np.array([b.stop for b in box])
    # every sphere's index box at once (the per-sphere Python overhead dominated small phantoms)
    lo = np.maximum(np.ceil((points - radii[:, None] - origin) / spacing).astype(int), starts)
    hi = np.minimum(np.floor((points + radii[:, None] - origin) / spacing).astype(int) + 1, stops)
    axes = [grid.axis(a, box[a]) for a in range(3)]
    mask = np.zeros(tuple(stops - starts), bool)
    for p, r, a, b in zip(points, radii, lo - starts, hi - starts, strict=True):
        if np.any(a >= b):
            continue
        x = (axes[0][a[0] : b[0]] - np.float32(p[0]))[:, None, None]
        y = (axes[1][a[1] : b[1]] - np.float32(p[1]))[None, :, None]
        z = (axes[2][a[2] : b[2]] - np.float32(p[2]))[None, None, :]
        mask[a[0] : b[0], a[1] : b[1], a[2] : b[2]] |= x * x + y * y + z * z <= np.float32(r * r)
    return box, mask


def resample_curve(control: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Points every `step` mm along a Catmull-Rom spline through the control points, and their arc fraction."""
    control = np.asarray(control, np.float64)
    ext = np.vstack([2 * control[0] - control[1], control, 2 * control[-1] - control[-2]])
    dense = []
    for i in range(1, len(ext) - 2):
        p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]
        t = np.linspace(0.0, 1.0, 64, endpoint=False)[:, None]
        dense.append(
            0.5
            * (
                2 * p1
                + (-p0 + p2) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
            )
        )
    dense.append(control[-1:])
    pts = np.vstack(dense)
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(2, int(np.ceil(arc[-1] / step)) + 1)
    s = np.linspace(0.0, arc[-1], n)
    out = np.stack([np.interp(s, arc, pts[:, a]) for a in range(3)], axis=1)
    return out, s / arc[-1]


def superellipse(grid: Grid, centre: tuple[float, float], a: float, b: float, power: float) -> np.ndarray:
    """2D (x, y) mask of |x/a|^p + |y/b|^p <= 1 over the whole grid, broadcast along z by the caller."""
    x = np.abs(grid.axis(0) - centre[0])[:, None] / a
    y = np.abs(grid.axis(1) - centre[1])[None, :] / b
    return x**power + y**power <= 1.0


def paint(volume: np.ndarray, shape: tuple[Box, np.ndarray] | None, value: int) -> None:
    """Write `value` into the volume where the shape's mask is set (no-op for an off-grid shape)."""
    if shape is None:
        return
    box, mask = shape
    volume[box][mask] = value
