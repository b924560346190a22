"""The abdomen around the pancreas: body wall, spine, vessels, liver, spleen, kidneys, stomach and bowel.

World frame: RAS+ mm (+x towards the patient's right, +y anterior, +z superior); the body axis is z and
the pancreas lies near z = 0 (liver and pancreatic head at +x, spleen and pancreatic tail at -x). Everything is drawn from the anatomy generator only, so the anatomy of a seed does not
depend on the grid it is later rasterised on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ops import Blob, Op, Slab, Tube, every_tissue_but
from .shapes import Wobble, resample_curve, rotation
from .tissues import Tissue

T = Tissue
CAVITY = frozenset({T.VISCERAL_FAT})
SOFT = frozenset({T.VISCERAL_FAT, T.MUSCLE})


@dataclass(frozen=True)
class Body:
    """Key positions that the pancreas and its neighbours are placed relative to (mm)."""

    a_in: float  # half width of the abdominal cavity
    b_in: float  # half depth of the abdominal cavity
    spine: tuple[float, float]
    spine_r: float
    aorta: tuple[float, float]
    aorta_r: float

    @property
    def lateral(self) -> float:
        """Scale of lateral positions relative to a 115 mm cavity half width."""
        return self.a_in / 115.0


def u(rng: np.random.Generator, lo: float, hi: float) -> float:
    """One uniform draw as a Python float."""
    return float(rng.uniform(lo, hi))


def draw_body(rng: np.random.Generator) -> tuple[Body, list[Op]]:
    """Body outline with subcutaneous fat and muscle wall, spine, paraspinal and psoas muscles, aorta, IVC."""
    a, b, p = u(rng, 135, 170), u(rng, 100, 130), u(rng, 2.2, 2.8)
    subcut, wall = u(rng, 8, 30), u(rng, 7, 12)
    a_in, b_in = a - subcut - wall, b - subcut - wall
    ops: list[Op] = [
        Slab(T.SUBCUT_FAT, (0.0, 0.0), a, b, p),
        Slab(T.MUSCLE, (0.0, 0.0), a - subcut, b - subcut, p),
        Slab(T.VISCERAL_FAT, (0.0, 0.0), a_in, b_in, p),
    ]
    back = -b_in
    canal_r, rv = u(rng, 7, 9), u(rng, 17, 22)
    canal_y = back + u(rng, 0, 6)
    ys = canal_y + canal_r + 3 + rv
    for side in (-1, 1):  # paraspinal muscles beside the posterior arch
        ops.append(
            Slab(T.MUSCLE, (side * u(rng, 26, 36), back - u(rng, 0, 10)), u(rng, 20, 28), u(rng, 20, 26))
        )
    ops += [
        Slab(T.BONE_CORTEX, (0.0, canal_y - 2), canal_r + 5, canal_r + 5),
        Slab(T.BONE_CORTEX, (0.0, canal_y - canal_r - 14), 4.0, 14.0),
        Slab(T.CANAL, (0.0, canal_y), canal_r, canal_r),
        Slab(T.BONE_CORTEX, (0.0, ys), rv, rv * u(rng, 0.8, 0.95)),
        Slab(T.BONE_MARROW, (0.0, ys), rv - 2, rv * 0.8 - 2),
    ]
    period, z = u(rng, 30, 36), u(rng, -20, 20)
    for k in range(-8, 9):  # intervertebral discs
        zc = z + k * period
        ops.append(
            Slab(
                T.DISC,
                (0.0, ys),
                rv - 1,
                rv * 0.8 - 1,
                2.0,
                zc - 3.5,
                zc + 3.5,
                frozenset({T.BONE_MARROW, T.BONE_CORTEX}),
            )
        )
    for side in (-1, 1):  # psoas, below the diaphragmatic crura
        ops.append(
            Slab(
                T.MUSCLE,
                (side * u(rng, 30, 40), ys + u(rng, -5, 5)),
                u(rng, 12, 17),
                u(rng, 12, 17),
                2.0,
                -np.inf,
                u(rng, -20, 10),
                CAVITY,
            )
        )
    aorta_r = u(rng, 9, 13)
    aorta = (-u(rng, 4, 14), ys + rv + aorta_r + u(rng, 1, 4))
    ivc = (u(rng, 20, 30), ys + rv + u(rng, 4, 9))
    ops += [
        Slab(T.VEIN, ivc, u(rng, 10, 13), u(rng, 7, 10), 2.0, over=CAVITY),
        Slab(T.AORTA, aorta, aorta_r, aorta_r, 2.0, over=every_tissue_but(T.BONE_CORTEX, T.BONE_MARROW)),
    ]
    return Body(a_in, b_in, (0.0, ys), rv, aorta, aorta_r), ops


def draw_organs(rng: np.random.Generator, body: Body, pancreas_body: np.ndarray) -> list[Op]:
    """Kidneys, liver with gallbladder, spleen and stomach (drawn before the pancreas and its fat halo)."""
    s, ys = body.lateral, body.spine[1]
    ops: list[Op] = []
    for side in (1, -1):  # right kidney lower than the left
        c = np.array(
            [
                side * u(rng, 58, 75) * s,
                ys + u(rng, -6, 8),
                u(rng, -40, -15) - (u(rng, 8, 20) if side > 0 else 0),
            ]
        )
        r = np.array([u(rng, 24, 30), u(rng, 20, 26), u(rng, 48, 60)])
        rot = rotation(rng, 20)
        ops.append(Blob(T.KIDNEY, c, r, rot, over=SOFT))
        sinus = c + rot @ np.array([-side * r[0] * 0.45, 0.0, 0.0])
        ops.append(
            Blob(T.VISCERAL_FAT, sinus, r * np.array([0.35, 0.4, 0.55]), rot, over=frozenset({T.KIDNEY}))
        )
    liver_c = np.array([u(rng, 60, 80) * s, u(rng, -10, 15), u(rng, 60, 80)])
    liver_r = np.array([u(rng, 85, 100) * s, u(rng, 80, 100), u(rng, 80, 95)])
    ops.append(Blob(T.LIVER, liver_c, liver_r, rotation(rng, 12), Wobble.random(rng, 0.08), CAVITY))
    gb = np.array([u(rng, 40, 60) * s, u(rng, 35, 55), u(rng, 0, 20)])
    ops.append(
        Blob(
            T.GALLBLADDER,
            gb,
            np.array([u(rng, 12, 17), u(rng, 14, 20), u(rng, 25, 35)]),
            rotation(rng, 25),
            over=frozenset({T.LIVER, T.VISCERAL_FAT}),
        )
    )
    spleen_c = np.array([-u(rng, 95, 110) * s, ys + u(rng, 5, 20), u(rng, 55, 75)])
    ops.append(
        Blob(
            T.SPLEEN,
            spleen_c,
            np.array([u(rng, 22, 30), u(rng, 40, 55), u(rng, 45, 60)]),
            rotation(rng, 30),
            Wobble.random(rng, 0.06),
            CAVITY,
        )
    )
    st_c = np.array([-u(rng, 25, 50) * s, pancreas_body[1] + u(rng, 45, 60), u(rng, 50, 70)])
    st_r = np.array([u(rng, 45, 60) * s, u(rng, 28, 38), u(rng, 35, 50)])
    st_rot = rotation(rng, 20)
    inner = st_r - u(rng, 4, 6)
    ops += [
        Blob(T.STOMACH_WALL, st_c, st_r, st_rot, over=CAVITY),
        Blob(T.BOWEL_FLUID, st_c, inner, st_rot, over=frozenset({T.STOMACH_WALL})),
        # supine patient: the gas rises anteriorly above an air-fluid level
        Blob(
            T.BOWEL_GAS,
            st_c,
            inner,
            st_rot,
            over=frozenset({T.BOWEL_FLUID}),
            cut=(1, st_c[1] + inner[1] * u(rng, -0.2, 0.6)),
        ),
    ]
    return ops


def draw_bowel(rng: np.random.Generator, body: Body) -> list[Op]:
    """The colon frame and small-bowel loops, each a wall with gas or fluid inside."""
    a, b, s = body.a_in, body.b_in, body.lateral
    ctrl = np.array(
        [
            [0.62 * a, u(rng, -20, 10), -140.0],
            [0.62 * a, u(rng, -10, 10), u(rng, -15, 5)],
            [0.45 * a, 0.55 * b, u(rng, -10, 10)],
            [-0.45 * a, 0.55 * b, u(rng, -5, 15)],
            [-0.68 * a, u(rng, -20, 0), u(rng, 10, 30)],
            [-0.65 * a, u(rng, -10, 10), -140.0],
        ]
    )
    r = u(rng, 14, 22) * min(s, 1.0)
    pts, _ = resample_curve(ctrl, 3.0)
    content = T.BOWEL_GAS if rng.random() < 0.7 else T.BOWEL_FLUID
    ops: list[Op] = [
        Tube(T.BOWEL_WALL, pts, np.full(len(pts), r), CAVITY),
        Tube(content, pts, np.full(len(pts), r - 3), frozenset({T.BOWEL_WALL})),
    ]
    for _ in range(int(rng.integers(4, 10))):
        c = np.array([u(rng, -0.55, 0.55) * a, u(rng, 0.0, 0.7) * b, u(rng, -140, -35)])
        rr = np.array([u(rng, 10, 18), u(rng, 10, 18), u(rng, 12, 25)])
        rot = rotation(rng, 45)
        inside = T.BOWEL_GAS if rng.random() < 0.3 else T.BOWEL_FLUID
        ops += [
            Blob(T.BOWEL_WALL, c, rr, rot, over=CAVITY),
            Blob(inside, c, rr - 2.5, rot, over=frozenset({T.BOWEL_WALL})),
        ]
    return ops
