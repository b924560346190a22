"""The pancreas (a curved tube: head, neck, body, tail) with its main duct, its vessels, lesions and the
hard negatives around it (fat lobules, lymph nodes, duct dilations, small vessels)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from eanno_contracts.labels import CLASS_NAMES, CYST, PDAC

from .anatomy import Body, u
from .lookalikes import pancreatic_lookalikes
from .ops import Blob, Op, Tube, every_tissue_but
from .shapes import Wobble, resample_curve, rotation
from .tissues import LESION_CLASS_WEIGHTS, LESION_CLASSES, LESION_COUNT_WEIGHTS, MAX_LESIONS, Tissue

log = logging.getLogger(__name__)
T = Tissue
NOT_VESSEL_OR_BONE = every_tissue_but(
    T.AORTA, T.ARTERY, T.VEIN, T.BONE_CORTEX, T.BONE_MARROW, T.CANAL, T.DISC
)
NOT_BONE = every_tissue_but(T.BONE_CORTEX, T.BONE_MARROW, T.CANAL, T.DISC)
PARENCHYMA = frozenset({T.PANCREAS})
LESION_GAP_MM = 8.0  # lesions of a case stay apart so that each remains its own component


@dataclass(frozen=True)
class Pancreas:
    """Dense centreline (N, 3) mm, radius (N,) mm and arc fraction t (N,) from the head (0) to the tail (1)."""

    points: np.ndarray
    radii: np.ndarray
    t: np.ndarray
    duct_t: tuple[float, float]
    halo: float

    def at(self, t: float) -> tuple[np.ndarray, float, np.ndarray]:
        """Point, radius and unit tangent at arc fraction t."""
        i = int(np.clip(np.searchsorted(self.t, t), 1, len(self.t) - 1))
        tangent = self.points[i] - self.points[i - 1]
        return self.points[i], float(self.radii[i]), tangent / np.linalg.norm(tangent)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """World bounding box (lo, hi) of the organ."""
        r = self.radii[:, None]
        return (self.points - r).min(0), (self.points + r).max(0)


@dataclass
class Plan:
    """What gets painted around the pancreas, plus the records of lesions and hard negatives."""

    ops: list[Op] = field(default_factory=list)
    lesions: list[dict] = field(default_factory=list)
    negatives: list[dict] = field(default_factory=list)


def draw_pancreas(rng: np.random.Generator, body: Body) -> Pancreas:
    """Centreline through uncinate, head, neck, body, body/tail and tail, placed around the aorta."""
    (ax, ay), s = body.aorta, body.lateral
    ctrl = np.array(
        [
            [ax + u(rng, 35, 45) * s, ay + u(rng, 18, 26), u(rng, -38, -28)],
            [ax + u(rng, 30, 40) * s, ay + u(rng, 28, 36), u(rng, -18, -8)],
            [ax + u(rng, 10, 18) * s, ay + u(rng, 38, 46), u(rng, -5, 2)],
            [ax - u(rng, 15, 30) * s, ay + u(rng, 32, 42), u(rng, 0, 10)],
            [ax - u(rng, 50, 65) * s, ay + u(rng, 18, 28), u(rng, 8, 18)],
            [ax - u(rng, 78, 92) * s, ay + u(rng, -2, 10), u(rng, 15, 28)],
        ]
    )
    ctrl_r = np.array(
        [u(rng, 10, 13), u(rng, 12, 16), u(rng, 7, 10), u(rng, 8, 12), u(rng, 7, 10), u(rng, 5, 8)]
    )
    pts, t = resample_curve(ctrl, 1.0)
    ctrl_t = np.linspace(0, 1, len(ctrl))  # radii follow the control points' order along the organ
    radii = np.interp(t, ctrl_t, ctrl_r)
    return Pancreas(pts, radii, t, (u(rng, 0.08, 0.15), u(rng, 0.86, 0.93)), u(rng, 3, 8))


def _orthogonal(rng: np.random.Generator, tangent: np.ndarray) -> np.ndarray:
    """A random unit vector perpendicular to the tangent."""
    v = rng.normal(size=3)
    v -= v.dot(tangent) * tangent
    return v / np.linalg.norm(v)


def _segment(p: Pancreas, t0: float, t1: float) -> slice:
    """Index range of the centreline between arc fractions t0 and t1."""
    return slice(int(np.searchsorted(p.t, t0)), int(np.searchsorted(p.t, t1)) + 1)


def plan_pancreas(
    rng: np.random.Generator,
    body: Body,
    p: Pancreas,
    hu: np.ndarray,
    n_lesions: int | None,
    lookalike_rng: np.random.Generator | None = None,
) -> Plan:
    """Fat halo, peripancreatic vessels, parenchyma and duct, lesions, hard negatives, in painting order."""
    plan = Plan()
    plan.ops.append(Tube(T.VISCERAL_FAT, p.points, p.radii + p.halo, NOT_VESSEL_OR_BONE))
    plan.ops += _vessels(rng, body, p)
    plan.ops.append(Tube(T.PANCREAS, p.points, p.radii, NOT_VESSEL_OR_BONE))
    seg = _segment(p, *p.duct_t)
    duct_r = u(rng, 0.9, 1.6)
    duct_pts = p.points[seg] + np.array([0.0, -u(rng, 0.0, 2.0), 0.0])
    plan.ops.append(Tube(T.DUCT, duct_pts, np.full(len(duct_pts), duct_r), PARENCHYMA))
    lesions = _plan_lesions(rng, p, hu, n_lesions)
    dilations: list[Op] = []
    clearings: list[Op] = []
    lesion_ops: list[Op] = []
    for k, les in enumerate(lesions):
        tid = T.FIRST_LESION + k
        hu[tid] = les["hu"]
        lesion_ops.append(Blob(tid, les["centre"], les["radii"], les["rot"], les["wobble"], NOT_BONE))
        if les["class"] == CLASS_NAMES[PDAC] and rng.random() < 0.6 and les["t"] < p.duct_t[1] - 0.1:
            # PDAC obstructs the duct: the duct upstream (towards the tail) is dilated
            up = _segment(p, les["t"], p.duct_t[1])
            r = np.minimum(u(rng, 2.0, 3.5), p.radii[up] - 2.0)
            dilations.append(Tube(T.DUCT, p.points[up], np.maximum(r, duct_r), PARENCHYMA))
        elif les["class"] != CLASS_NAMES[PDAC]:
            # a cyst or PNET that touched the duct would be relabelled by the post-processing duct rule
            clearings.append(
                Blob(
                    T.PANCREAS, les["centre"], les["radii"].max() + np.full(3, 7.0), over=frozenset({T.DUCT})
                )
            )
        plan.lesions.append({k2: v for k2, v in les.items() if k2 not in ("rot", "wobble")} | {"tissue": tid})
    negatives = _plan_negatives(rng, p, lesions, duct_r)
    negative_ops = [op for op, _ in negatives]
    plan.negatives = [rec for _, rec in negatives]
    if lookalike_rng is not None:  # drawn from their own stream: the rest of the anatomy stays as it was
        for ops, rec in pancreatic_lookalikes(lookalike_rng, p, duct_r):
            if not _near_lesion(np.asarray(rec["centre_world"]), rec["size_mm"] / 2, lesions):
                negative_ops += ops
                plan.negatives.append(rec)
    plan.ops += dilations + negative_ops + clearings + lesion_ops
    return plan


def _vessels(rng: np.random.Generator, body: Body, p: Pancreas) -> list[Op]:
    """SMV/portal vein behind the neck, splenic vein along the back of body and tail, SMA and splenic artery."""
    (ax, ay), ar = body.aorta, body.aorta_r
    t_neck = 0.4
    neck, r_neck, _ = p.at(t_neck)
    r_smv = u(rng, 5, 7)
    smv = np.array([neck[0] + u(rng, -3, 3), neck[1] - r_neck - r_smv - u(rng, 0.5, 2.0), neck[2]])
    vein = every_tissue_but(T.AORTA, T.BONE_CORTEX, T.BONE_MARROW, T.CANAL, T.DISC, T.KIDNEY)
    ops: list[Op] = []
    smv_pts, _ = resample_curve(np.array([smv - [0, 0, 180.0], smv - [0, 0, 60.0], smv]), 1.5)
    portal, _ = resample_curve(
        np.array(
            [
                smv,
                smv + [u(rng, 20, 30), 0.0, u(rng, 20, 30)],
                smv + [u(rng, 50, 60), u(rng, 5, 15), u(rng, 45, 60)],
            ]
        ),
        1.5,
    )
    ops.append(Tube(T.VEIN, np.vstack([smv_pts, portal]), np.full(len(smv_pts) + len(portal), r_smv), vein))
    seg = _segment(p, t_neck, 0.97)
    r_sv = u(rng, 3.5, 5.0)
    sv = p.points[seg] - np.stack(
        [np.zeros(len(p.radii[seg])), p.radii[seg] + r_sv + u(rng, 0.5, 1.5), np.zeros(len(p.radii[seg]))], 1
    )
    ops.append(Tube(T.VEIN, np.vstack([smv, sv]), np.full(len(sv) + 1, r_sv), vein))
    z_sma = neck[2] + u(rng, 12, 22)
    sma_x = smv[0] - u(rng, 10, 14)
    sma, _ = resample_curve(
        np.array(
            [
                [ax, ay + ar - 3, z_sma],
                [sma_x, smv[1] - u(rng, 3, 6), z_sma - 12],
                [sma_x, smv[1] - 4, -180.0],
            ]
        ),
        1.0,
    )
    ops.append(Tube(T.ARTERY, sma, np.full(len(sma), u(rng, 3, 4.5)), vein))
    seg = _segment(p, 0.45, 0.95)
    wiggle = 3.0 * np.sin(np.linspace(0, u(rng, 4, 9) * np.pi, len(p.radii[seg])) + u(rng, 0, 6))
    spa = p.points[seg] + np.stack([np.zeros_like(wiggle), wiggle, p.radii[seg] + u(rng, 2, 4)], 1)
    ops.append(Tube(T.ARTERY, spa, np.full(len(spa), u(rng, 2.0, 3.0)), vein))
    return ops


def _plan_lesions(rng: np.random.Generator, p: Pancreas, hu: np.ndarray, n: int | None) -> list[dict]:
    """0-3 lesions placed in the parenchyma, apart from each other; each with class, size, HU and shape."""
    if n is None:
        n = int(rng.choice(len(LESION_COUNT_WEIGHTS), p=LESION_COUNT_WEIGHTS))
    if not 0 <= n <= MAX_LESIONS:
        raise ValueError(f"n_lesions must be between 0 and {MAX_LESIONS}, got {n}")
    names = list(LESION_CLASS_WEIGHTS)
    weights = np.array([LESION_CLASS_WEIGHTS[c] for c in names])
    out: list[dict] = []
    parenchyma = float(hu[T.PANCREAS])
    for _ in range(n):
        cls = str(rng.choice(names, p=weights / weights.sum()))
        for attempt in range(200):
            shrink = 1.0 if attempt < 100 else 0.6  # a crowded organ takes smaller lesions
            t = u(rng, 0.04, 0.96)
            point, r, tangent = p.at(t)
            d_max = max(8.0, min(30.0, 3.0 * r + 4.0) * shrink)
            diameter = float(np.exp(rng.uniform(np.log(8.0), np.log(d_max))))
            radius = diameter / 2
            centre = point + _orthogonal(rng, tangent) * u(rng, 0.0, max(0.0, r - 0.6 * radius))
            if all(
                np.linalg.norm(centre - o["centre"]) >= radius + o["diameter_mm"] / 2 + LESION_GAP_MM
                for o in out
            ):
                break
        else:
            log.warning("placed %d of %d lesions: no room left in this pancreas", len(out), n)
            break
        out.append(_lesion_shape(rng, cls, t, centre, diameter, parenchyma))
    return out


def _lesion_shape(
    rng: np.random.Generator, cls: str, t: float, centre: np.ndarray, diameter: float, parenchyma: float
) -> dict:
    """Class-specific shape and HU: PDAC irregular and hypo-attenuating, cyst round near water, PNET bright."""
    spec = LESION_CLASSES[cls]
    lo, hi = spec["hu"]
    if cls == CLASS_NAMES[PDAC]:
        hi = max(lo, min(hi, parenchyma - spec["min_contrast"]))
        ratios, wobble = rng.uniform(0.8, 1.2, 3), Wobble.random(rng, u(rng, 0.15, 0.3))
    elif cls == CLASS_NAMES[CYST]:
        ratios, wobble = rng.uniform(0.9, 1.1, 3), None
    else:
        lo = min(hi, max(lo, parenchyma + spec["min_contrast"]))
        ratios, wobble = rng.uniform(0.85, 1.15, 3), Wobble.random(rng, 0.05)
    ratios /= np.prod(ratios) ** (1 / 3)
    return {
        "class": cls,
        "label": spec["label"],
        "t": t,
        "centre": centre,
        "diameter_mm": diameter,
        "radii": ratios * diameter / 2,
        "hu": u(rng, lo, hi),
        "rot": rotation(rng, 90),
        "wobble": wobble,
    }


def _plan_negatives(
    rng: np.random.Generator, p: Pancreas, lesions: list[dict], duct_r: float
) -> list[tuple[Op, dict]]:
    """Look-alikes beside or in the pancreas that are not lesions: they give the post-processing work."""
    kinds = ["fat_lobule", "lymph_node", "duct_dilation", "vessel"]
    out: list[tuple[Op, dict]] = []
    for _ in range(int(rng.integers(2, 7))):
        kind = str(rng.choice(kinds, p=[0.35, 0.25, 0.2, 0.2]))
        t = u(rng, *p.duct_t) if kind == "duct_dilation" else u(rng, 0.05, 0.95)
        point, r, tangent = p.at(t)
        side = _orthogonal(rng, tangent)
        if kind == "fat_lobule":
            size = u(rng, 3, 7)
            centre = point + side * r * u(rng, 0.7, 1.1)
            op: Op = Blob(
                T.FAT_LOBULE,
                centre,
                np.full(3, size) * rng.uniform(0.8, 1.2, 3),
                rotation(rng, 90),
                over=frozenset({T.PANCREAS, T.VISCERAL_FAT}),
            )
        elif kind == "lymph_node":
            size = u(rng, 4, 8)
            centre = point + side * (r + size + u(rng, 1.0, 4.0))
            op = Blob(
                T.LYMPH_NODE,
                centre,
                np.array([size, size * 0.8, size * 1.2]),
                rotation(rng, 90),
                over=frozenset({T.VISCERAL_FAT}),
            )
        elif kind == "duct_dilation":
            seg = _segment(p, t, min(p.duct_t[1], t + u(rng, 0.05, 0.12)))
            size = max(duct_r, min(u(rng, 2.5, 4.0), float(p.radii[seg].min()) - 2.0))
            centre = p.points[seg].mean(0)
            op = Tube(T.DUCT, p.points[seg], np.full(len(p.points[seg]), size), PARENCHYMA)
        else:
            size = u(rng, 2.0, 4.0)
            ctrl = np.array([p.at(max(0.0, t - 0.08))[0], point, p.at(min(1.0, t + 0.08))[0]]) + side * (
                r + size * 0.5
            )
            pts, _ = resample_curve(ctrl, 1.0)
            centre = point + side * (r + size * 0.5)
            op = Tube(
                T.VEIN if rng.random() < 0.5 else T.ARTERY,
                pts,
                np.full(len(pts), size),
                frozenset({T.PANCREAS, T.VISCERAL_FAT}),
            )
        if _near_lesion(centre, size, lesions):
            continue  # a look-alike touching a true lesion would merge with it
        out.append(
            (
                op,
                {
                    "kind": kind,
                    "tissue": int(op.tissue),
                    "centre_world": [float(c) for c in centre],
                    "size_mm": 2 * size,
                },
            )
        )
    return out


def _near_lesion(centre: np.ndarray, size: float, lesions: list[dict]) -> bool:
    """Whether a look-alike of radius `size` would come within 5 mm of a true lesion (and merge with it)."""
    return any(
        np.linalg.norm(centre - les["centre"]) < les["diameter_mm"] / 2 + size + 5.0 for les in lesions
    )
