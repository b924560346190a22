"""generate_phantom: a deterministic synthetic abdominal CT with labels in the 6-class map."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, ornt_transform
from scipy import ndimage

from .anatomy import draw_body, draw_bowel, draw_organs
from .ops import rasterise
from .pancreas import draw_pancreas, plan_pancreas
from .shapes import Grid
from .tissues import Tissue, draw_hu, label_lut

log = logging.getLogger(__name__)

# Every axis order and direction a NIfTI file can be stored in (48), e.g. ("L", "P", "S").
ORIENTATIONS: tuple[tuple[str, str, str], ...] = tuple(
    tuple(pair[flip] for pair, flip in zip(perm, flips, strict=True))  # type: ignore[misc]
    for perm in itertools.permutations((("L", "R"), ("P", "A"), ("I", "S")))
    for flips in itertools.product((0, 1), repeat=3)
)
IN_PLANE_MM = (0.6, 1.0)
SLICE_MM = (1.0, 5.0)
FOV_MM = ((200.0, 260.0), (170.0, 220.0), (110.0, 170.0))
NOISE_HU = (8.0, 20.0)
BLUR_VOXELS = (0.4, 0.8)


@dataclass(frozen=True)
class Phantom:
    """A synthetic CT (int16 HU) and its labels (uint8, 6-class map) stored with `affine`'s orientation."""

    ct: np.ndarray
    labels: np.ndarray
    affine: np.ndarray
    lesions: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size (mm) along the stored array axes."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]


def _orientation(codes: str | Sequence[str]) -> tuple[str, str, str]:
    """Validate axis codes such as "LPS" or ("R", "A", "S")."""
    out = tuple(str(c).upper() for c in codes)
    if out not in ORIENTATIONS:
        raise ValueError(f"orientation must be three axis codes, one of L/R, P/A, I/S each (e.g. 'LPS'), got {codes!r}")
    return out  # type: ignore[return-value]


def _acquisition(rng: np.random.Generator, shape, spacing, orientation, noise_hu) -> dict:
    """Spacing (canonical RAS order), field of view, orientation, noise and blur, drawn where not given."""
    codes = ORIENTATIONS[int(rng.integers(len(ORIENTATIONS)))]
    if orientation is not None:
        codes = _orientation(orientation)
    drawn = np.array([0.0, 0.0, rng.uniform(*SLICE_MM)])
    drawn[:2] = rng.uniform(*IN_PLANE_MM)
    fov = np.array([rng.uniform(*r) for r in FOV_MM])
    jitter = rng.uniform(-10.0, 10.0, 3)
    noise = rng.uniform(*NOISE_HU) if noise_hu is None else float(noise_hu)
    blur = rng.uniform(*BLUR_VOXELS)
    # shape and spacing are given in the stored orientation; the generator works in RAS
    to_ras = ornt_transform(axcodes2ornt(codes), axcodes2ornt(("R", "A", "S")))[:, 0].astype(int)
    perm = np.argsort(to_ras)  # RAS axis r is stored axis perm[r]
    if spacing is not None:
        sp = np.asarray(spacing, float)
        if sp.shape != (3,) or np.any(sp <= 0):
            raise ValueError(f"spacing must be three positive mm values, got {spacing!r}")
        drawn = sp[perm]
    if shape is not None:
        sh = np.asarray(shape, int)
        if sh.shape != (3,) or np.any(sh < 1):
            raise ValueError(f"shape must be three positive voxel counts, got {shape!r}")
        n = sh[perm]
    else:
        n = np.maximum(1, np.round(fov / drawn)).astype(int)
    return {"codes": codes, "spacing": drawn, "shape": n, "jitter": jitter, "noise": noise, "blur": blur}


def generate_phantom(
    seed: int,
    *,
    shape: Sequence[int] | None = None,
    spacing: Sequence[float] | None = None,
    n_lesions: int | None = None,
    orientation: str | Sequence[str] | None = None,
    noise_hu: float | None = None,
) -> Phantom:
    """A synthetic abdominal CT around the pancreas, deterministic from the seed.

    shape and spacing are in the stored array order of `orientation` (axis codes such as "LPS"); what is
    not given is drawn from the seed (in-plane 0.6-1.0 mm, 1-5 mm between slices, a field of view of
    about 230 x 195 x 140 mm centred near the pancreas, any of the 48 orientations). The anatomy of a
    seed does not depend on shape, spacing or orientation.
    """
    anat_ss, acq_ss, noise_ss = np.random.SeedSequence(int(seed)).spawn(3)
    rng = np.random.default_rng(anat_ss)
    hu = draw_hu(rng)
    body, body_ops = draw_body(rng)
    pancreas = draw_pancreas(rng, body)
    organs = draw_organs(rng, body, pancreas.at(0.6)[0])
    bowel = draw_bowel(rng, body)
    plan = plan_pancreas(rng, body, pancreas, hu, n_lesions)

    acq = _acquisition(np.random.default_rng(acq_ss), shape, spacing, orientation, noise_hu)
    lo, hi = pancreas.bounds()
    centre = (lo + hi) / 2 + acq["jitter"]
    sp, n = acq["spacing"], acq["shape"]
    grid = Grid(tuple(int(v) for v in n), tuple(float(v) for v in sp), tuple(float(v) for v in centre - (n - 1) * sp / 2))
    tissue, boxes = rasterise(grid, body_ops + organs + bowel + plan.ops)

    labels = label_lut({les["tissue"]: les["label"] for les in plan.lesions})[tissue]
    ct = _image(tissue, hu, grid, acq, np.random.default_rng(noise_ss))

    t = ornt_transform(axcodes2ornt(("R", "A", "S")), axcodes2ornt(acq["codes"]))
    affine = grid.affine @ inv_ornt_aff(t, grid.shape)
    ct = np.ascontiguousarray(apply_orientation(ct, t))
    labels = np.ascontiguousarray(apply_orientation(labels, t))
    lesions = _lesion_records(plan.lesions, tissue, boxes, grid, affine)
    meta = {
        "seed": int(seed),
        "orientation": "".join(acq["codes"]),
        "spacing_ras": [float(v) for v in sp],
        "noise_hu": float(acq["noise"]),
        "blur_voxels": float(acq["blur"]),
        "parenchyma_hu": float(hu[Tissue.PANCREAS]),
        "hard_negatives": plan.negatives,
    }
    return Phantom(ct, labels, affine, lesions, meta)


def _image(tissue: np.ndarray, hu: np.ndarray, grid: Grid, acq: dict, rng: np.random.Generator) -> np.ndarray:
    """HU from the tissue map, a slight in-plane blur (the reconstruction kernel) and Gaussian noise."""
    img = hu[tissue]  # float32
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    sigma = (acq["blur"], acq["blur"] * grid.spacing[0] / grid.spacing[1], 0.0)
    # blurring white noise lowers its std by sqrt(sum(kernel^2)) per blurred axis: scale it up to compensate
    gain = np.prod([np.sqrt(np.sum(_kernel(s) ** 2)) for s in sigma[:2]])
    img += noise * np.float32(acq["noise"] / gain)
    del noise
    ndimage.gaussian_filter(img, sigma, output=img, mode="nearest")
    np.clip(img, -1024, 3071, out=img)
    return np.rint(img).astype(np.int16)


def _kernel(sigma: float) -> np.ndarray:
    """The 1D Gaussian kernel scipy's gaussian_filter uses (truncate 4)."""
    radius = int(4.0 * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _lesion_records(planned: list[dict], tissue: np.ndarray, boxes: dict, grid: Grid, affine: np.ndarray) -> list[dict]:
    """Per lesion present on the grid: class, voxels, mL, centroid in stored voxel indices and world mm."""
    out = []
    inv = np.linalg.inv(affine)
    voxel_ml = float(np.prod(grid.spacing)) / 1000.0
    for les in planned:
        box = boxes.get(les["tissue"])
        idx = np.nonzero(tissue[box] == les["tissue"]) if box is not None else (np.array([]),)
        if idx[0].size == 0:
            log.debug("lesion %s fell outside the field of view", les["class"])
            continue
        centre_c = np.array([i.mean() + s.start for i, s in zip(idx, box, strict=True)])
        world = grid.affine[:3, :3] @ centre_c + grid.affine[:3, 3]
        stored = inv[:3, :3] @ world + inv[:3, 3]
        out.append(
            {
                "id": len(out) + 1,
                "class": les["class"],
                "label": int(les["label"]),
                "voxels": int(idx[0].size),
                "volume_ml": round(idx[0].size * voxel_ml, 4),
                "diameter_mm": round(float(les["diameter_mm"]), 2),
                "hu": round(float(les["hu"]), 1),
                "centre_voxel": [round(float(v), 3) for v in stored],
                "centre_world": [round(float(v), 3) for v in world],
            }
        )
    return out
