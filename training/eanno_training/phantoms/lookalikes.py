"""Look-alikes that the paper's post-processing rules exist for, labelled as what they are (never lesions).

Outside the pancreas (rule 1): renal and hepatic cysts (water), splenic lesions (PDAC-like attenuation)
and a duodenal diverticulum beside the pancreatic head (fluid, sometimes with gas). Inside it: a cyst-like
side-branch ectasia opening into the main duct (labelled duct; rule 3) and calcifications (denser than any
lesion class; rule 4). Prevalences are set for a phantom set that exercises every rule, not to favour
them: a look-alike lies where it lies, and whether the rules catch the model's mistakes there is what
`make eval` measures. Drawn from a random stream of their own, so every other structure of a seed is
unchanged by them.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from .anatomy import u
from .ops import Blob, Op
from .shapes import rotation
from .tissues import Tissue

if TYPE_CHECKING:
    from .pancreas import Pancreas

T = Tissue
PARENCHYMA = frozenset({T.PANCREAS})
# HU per case of the look-alike tissues (portal-venous phase)
LOOKALIKE_HU = MappingProxyType(
    {
        T.ORGAN_CYST: (-5.0, 20.0),  # simple cysts: water
        T.SPLENIC_LESION: (40.0, 80.0),  # hypo-attenuating like PDAC (lymphoma, metastasis, infarct)
        T.DIVERTICULUM: (0.0, 30.0),  # duodenal fluid
        T.CALCIFICATION: (300.0, 700.0),  # chronic pancreatitis: above every lesion window's upper limit
    }
)
# Probability that a phantom carries each kind (several can occur together).
PREVALENCE = MappingProxyType(
    {
        "renal_cyst": 0.4,
        "hepatic_cyst": 0.3,
        "splenic_lesion": 0.2,
        "duodenal_diverticulum": 0.3,
        "duct_cyst": 0.3,
        "calcification": 0.2,
    }
)


def draw_lookalike_hu(rng: np.random.Generator, hu: np.ndarray) -> None:
    """Fill in the HU of the look-alike tissues for this case (in place)."""
    for tissue, (lo, hi) in LOOKALIKE_HU.items():
        hu[tissue] = u(rng, lo, hi)


def _inside(rng: np.random.Generator, organ: Blob, depth: tuple[float, float]) -> np.ndarray:
    """A point inside an organ's ellipsoid, at a fraction `depth` of the way from its centre to its surface,
    in its lower half: the field of view is centred on the pancreas, below the liver's and spleen's centres."""
    d = rng.normal(size=3)
    d[2] = -abs(d[2])
    d /= np.linalg.norm(d)
    rot = organ.rot if organ.rot is not None else np.eye(3)
    return organ.centre + rot @ (organ.radii * d * u(rng, *depth))


def _record(kind: str, tissue: int, centre: np.ndarray, size: float) -> dict:
    return {
        "kind": kind,
        "tissue": int(tissue),
        "centre_world": [float(c) for c in centre],
        "size_mm": 2 * size,
    }


Lookalike = tuple[list[Op], dict]  # the paint operations of one look-alike and its hard-negative record


def organ_lookalikes(rng: np.random.Generator, organs: list[Op]) -> list[Lookalike]:
    """Cysts in the kidneys and liver, a lesion in the spleen (painted within the organ and its fat)."""
    blobs: dict[int, list[Blob]] = {}
    for op in organs:
        if isinstance(op, Blob) and op.tissue in (T.KIDNEY, T.LIVER, T.SPLEEN):
            blobs.setdefault(int(op.tissue), []).append(op)
    out: list[Lookalike] = []
    for kind, tissue, organ_t, radius in (
        ("renal_cyst", T.ORGAN_CYST, T.KIDNEY, (5.0, 15.0)),
        ("hepatic_cyst", T.ORGAN_CYST, T.LIVER, (4.0, 15.0)),
        ("splenic_lesion", T.SPLENIC_LESION, T.SPLEEN, (4.0, 12.0)),
    ):
        if rng.random() >= PREVALENCE[kind] or not blobs.get(int(organ_t)):
            continue
        candidates = blobs[int(organ_t)]
        organ = candidates[int(rng.integers(len(candidates)))]
        size = u(rng, *radius)
        centre = _inside(rng, organ, (0.3, 0.9))  # deep, or bulging out of the surface (exophytic)
        radii = np.full(3, size) * rng.uniform(0.85, 1.15, 3)
        op = Blob(tissue, centre, radii, rotation(rng, 90), over=frozenset({organ_t, T.VISCERAL_FAT}))
        out.append(([op], _record(kind, tissue, centre, size)))
    return out


def pancreatic_lookalikes(rng: np.random.Generator, pancreas: Pancreas, duct_r: float) -> list[Lookalike]:
    """A duodenal diverticulum beside the head, a side-branch ectasia on the duct, calcifications."""
    out: list[Lookalike] = []
    if rng.random() < PREVALENCE["duodenal_diverticulum"]:
        point, r, tangent = pancreas.at(u(rng, 0.05, 0.25))
        size = u(rng, 6.0, 12.0)
        # from touching the head to a fat plane apart (the halo is the pancreas' fat rim)
        centre = point + _side(rng, tangent) * (r + size + u(rng, 0.0, 1.0) * pancreas.halo)
        radii = np.full(3, size) * rng.uniform(0.85, 1.15, 3)
        ops: list[Op] = [
            Blob(
                T.DIVERTICULUM,
                centre,
                radii,
                rotation(rng, 90),
                over=frozenset({T.VISCERAL_FAT, T.BOWEL_WALL, T.BOWEL_FLUID}),
            )
        ]
        if rng.random() < 0.4:  # a gas cap on the anterior side (supine patient)
            ops.append(
                Blob(
                    T.BOWEL_GAS,
                    centre,
                    radii,
                    over=frozenset({T.DIVERTICULUM}),
                    cut=(1, centre[1] + size * 0.3),
                )
            )
        out.append((ops, _record("duodenal_diverticulum", T.DIVERTICULUM, centre, size)))
    if rng.random() < PREVALENCE["duct_cyst"]:
        lo, hi = pancreas.duct_t
        point, r, tangent = pancreas.at(u(rng, lo + 0.05, hi - 0.05))
        size = min(u(rng, 2.5, 5.0), max(1.5, r - 2.5))
        centre = point + _side(rng, tangent) * (duct_r + size * 0.7)  # overlaps the duct: it opens into it
        out.append(
            (
                [Blob(T.DUCT, centre, np.full(3, size), over=PARENCHYMA)],
                _record("duct_cyst", T.DUCT, centre, size),
            )
        )
    if rng.random() < PREVALENCE["calcification"]:
        for _ in range(int(rng.integers(1, 4))):
            point, r, tangent = pancreas.at(u(rng, 0.05, 0.95))
            size = u(rng, 1.5, 3.0)
            centre = point + _side(rng, tangent) * u(rng, 0.0, max(0.0, r - size - 1.0))
            op = Blob(T.CALCIFICATION, centre, np.full(3, size), over=PARENCHYMA)
            out.append(([op], _record("calcification", T.CALCIFICATION, centre, size)))
    return out


def _side(rng: np.random.Generator, tangent: np.ndarray) -> np.ndarray:
    """A random unit vector perpendicular to the tangent."""
    v = rng.normal(size=3)
    v -= v.dot(tangent) * tangent
    return v / np.linalg.norm(v)
