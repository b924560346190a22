"""The four adaptive rules (DESIGN.md steps 1-4), each one small function with one entry point.

A rule looks at one candidate and returns an `Outcome` when it fires, None otherwise; `decide` asks
them in the paper's order and the first that fires decides. Every candidate's outcome goes into the
report, the value the rule compared included, so a reviewer sees why.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from eanno_contracts.labels import BACKGROUND, LESION_KEYS, PANCREAS

from .components import Candidate
from .rules import Rules

KEPT = "kept"
REMOVED_OUTSIDE = "removed_outside_pancreas"
RELABELLED_RATIO = "relabelled_volume_ratio"
RELABELLED_DUCT = "relabelled_duct"
RELABELLED_CONTRAST = "relabelled_contrast"
DECISIONS = (KEPT, REMOVED_OUTSIDE, RELABELLED_RATIO, RELABELLED_DUCT, RELABELLED_CONTRAST)


@dataclass(frozen=True)
class Context:
    """What the rules need beyond the candidate: the limits and the pancreas before relabelling."""

    rules: Rules
    parenchyma_voxels: int


@dataclass(frozen=True)
class Outcome:
    """A decision, the class the candidate's voxels get, and what was compared with what."""

    decision: str
    new_class: int | None  # None: unchanged (kept)
    value: float | None
    limit: float | tuple[float, float] | None
    reason: str


def outside_pancreas(c: Candidate, ctx: Context) -> Outcome | None:
    """Step 1: a component not touching the pancreas (parenchyma or duct, dilated) is removed."""
    if c.touches_pancreas:
        return None
    r = ctx.rules.pancreas_dilation_voxels
    return Outcome(
        REMOVED_OUTSIDE, BACKGROUND, None, r, f"does not touch the pancreas dilated by {r} voxel(s)"
    )


def volume_ratio_percent(c: Candidate, ctx: Context) -> float:
    """100 * V(component) / V(parenchyma); infinite when the parenchyma is empty."""
    return 100.0 * c.voxels / ctx.parenchyma_voxels if ctx.parenchyma_voxels else math.inf


def volume_ratio(c: Candidate, ctx: Context) -> Outcome | None:
    """Step 2: a component too large for the pancreas it sits in becomes pancreas."""
    ratio = volume_ratio_percent(c, ctx)
    limit = ctx.rules.volume_ratio_limit[LESION_KEYS[c.class_id]]
    if ratio <= limit:
        return None
    return Outcome(RELABELLED_RATIO, PANCREAS, ratio, limit, f"volume ratio {ratio:.4g}% > {limit:g}%")


def duct(c: Candidate, ctx: Context) -> Outcome | None:
    """Step 3: a cyst or PNET (the classes listed in the rules) touching the duct becomes pancreas."""
    if LESION_KEYS[c.class_id] not in ctx.rules.duct_classes or not c.touches_duct:
        return None
    return Outcome(RELABELLED_DUCT, PANCREAS, None, None, "touches the pancreatic duct")


def contrast(c: Candidate, ctx: Context) -> Outcome | None:
    """Step 4: mean clipped HU outside the class window (inclusive) -> pancreas."""
    lo, hi = ctx.rules.hu_window[LESION_KEYS[c.class_id]]
    if lo <= c.hu_mean <= hi:
        return None
    return Outcome(
        RELABELLED_CONTRAST,
        PANCREAS,
        c.hu_mean,
        (lo, hi),
        f"mean HU {c.hu_mean:.1f} outside [{lo:g}, {hi:g}]",
    )


RULE_ORDER: tuple[Callable[[Candidate, Context], Outcome | None], ...] = (
    outside_pancreas,
    volume_ratio,
    duct,
    contrast,
)


def decide(c: Candidate, ctx: Context) -> Outcome:
    """The first rule that fires, in the paper's order; kept when none does."""
    for rule in RULE_ORDER:
        outcome = rule(c, ctx)
        if outcome is not None:
            return outcome
    return Outcome(KEPT, None, None, None, "passed every rule")
