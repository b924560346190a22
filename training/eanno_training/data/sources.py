"""Training cases straight from the phantom generator (no disk), prepared at the model spacing."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import numpy as np

from ..phantoms import Phantom, generate_phantom, phantom_seeds
from .atlas import Case, canonical
from .preprocess import DEFAULT_CLIP, Prepared, prepare


def phantom_case(phantom: Phantom, name: str = "phantom") -> Case:
    """A phantom as a canonical Case (what read_atlas_case returns for its written folder)."""
    image, affine = canonical(phantom.ct, phantom.affine)
    labels, _ = canonical(phantom.labels, phantom.affine)
    return Case(name, image, labels, affine, {"lesions": phantom.lesions, **phantom.meta})


def _one(
    seed: int, index: int, model_spacing: Sequence[float], clip: Sequence[float], kwargs: dict
) -> Prepared:
    """Generate, canonicalise and prepare one phantom (a top-level function so worker processes can run it)."""
    ph = generate_phantom(seed, **kwargs)
    return prepare(phantom_case(ph, f"phantom_{index:04d}"), model_spacing, clip)


def phantom_cases(
    n: int,
    seed: int,
    model_spacing: Sequence[float],
    *,
    clip: Sequence[float] = DEFAULT_CLIP,
    workers: int = 1,
    **generate_kwargs,
) -> list[Prepared]:
    """n phantoms (seeds as generate_phantom_set derives them) prepared at the model spacing, in memory."""
    seeds = phantom_seeds(seed, n)
    job = partial(_one, model_spacing=tuple(model_spacing), clip=tuple(clip), kwargs=generate_kwargs)
    if workers <= 1:
        return [job(s, i) for i, s in enumerate(seeds)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(job, seeds, range(n)))


def training_phantoms(
    n: int,
    seed: int,
    model_spacing: Sequence[float],
    *,
    clip: Sequence[float] = DEFAULT_CLIP,
    lesion_rich: bool = True,
    source_mm: tuple[float, float] | None = (0.6, 0.9),
) -> list[Prepared]:
    """n training phantoms (RAS) prepared at the model spacing; lesion_rich: 1-3 lesions in 85% of cases.

    source_mm: each phantom is generated on an isotropic grid of (uniform in this range) x the model
    spacing and then resampled, which keeps partial-volume edges and interpolated noise like a real
    scan's while costing a fraction of a native-resolution phantom; None -> the drawn native spacing.
    """
    rng = np.random.default_rng(seed)
    out = []
    for i, s in enumerate(phantom_seeds(seed, n)):
        k = int(rng.integers(1, 4)) if (lesion_rich and rng.random() < 0.85) else None
        src = None if source_mm is None else tuple(float(rng.uniform(*source_mm)) * m for m in model_spacing)
        out.append(_one(s, i, model_spacing, clip, {"n_lesions": k, "orientation": "RAS", "spacing": src}))
    return out
