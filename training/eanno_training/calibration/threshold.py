"""Threshold calibration output: theta* written into a checkpoint's META, where serving reads it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from eanno_contracts.errors import EannoError
from eanno_postproc import Rules

from ..checkpoint import load_checkpoint
from ..evaluation.cases import Case
from ..evaluation.matching import HitRule
from ..evaluation.run import Evaluation, ProbsFn, evaluate_cases
from ..seeds import CALIBRATION_SEED

__all__ = ["CALIBRATION_SEED", "ThresholdError", "chosen_theta", "sweep_thetas", "write_theta"]


class ThresholdError(EannoError, ValueError):
    """The threshold cannot be written (bad value, unreadable checkpoint)."""


def sweep_thetas(
    cases: Iterable[Case],
    probs_fn: ProbsFn,
    thetas: Sequence[float],
    *,
    target: float = 0.99,
    rules: Rules | None = None,
    rule: HitRule | None = None,
    select_on: str = "after",
    progress: Callable[[str], None] | None = None,
) -> Evaluation:
    """The calibration sweep: every case post-processed at every theta, theta* picked (DESIGN.md)."""
    return evaluate_cases(
        cases,
        probs_fn,
        thetas,
        rule=rule or HitRule(),
        rules=rules or Rules.defaults(),
        target=target,
        select_on=select_on,
        progress=progress,
        n_boot=200,
    )


def chosen_theta(ev: Evaluation, rules: Rules | None = None, or_best: bool = False) -> dict[str, Any]:
    """The one theta choice of both calibrators: theta* = the largest swept theta whose pooled sensitivity
    (after post-processing by default) reaches the target; -> its provenance record for META.

    When no swept theta reaches the target: with `or_best`, the largest of the most sensitive thetas
    (recorded as "reached": false); else ThresholdError naming that best theta.
    """
    star = ev.star
    if not star["reached"]:
        if not or_best or star["best_theta"] is None:
            raise ThresholdError(
                f"no swept theta reaches sensitivity {star['target']:g} "
                f"(best {star['best_sensitivity']} at theta {star['best_theta']}); nothing written"
            )
        i = ev.froc.thetas.index(star["best_theta"])
        star = {
            **star,
            "theta": star["best_theta"],
            "before": ev.froc.points["before"][i]["pooled"],
            "after": ev.froc.points["after"][i]["pooled"],
        }
    pts = ev.froc.points
    sweep = [
        {
            "theta": t,
            "sensitivity": pts["after"][i]["pooled"]["sensitivity"],
            "fp_per_scan": pts["after"][i]["pooled"]["fp_per_scan"],
            "sensitivity_before": pts["before"][i]["pooled"]["sensitivity"],
            "fp_per_scan_before": pts["before"][i]["pooled"]["fp_per_scan"],
        }
        for i, t in enumerate(ev.froc.thetas)
    ]
    stage = star["stage"]
    return {
        "theta": star["theta"],
        "target": star["target"],
        "reached": bool(ev.star["reached"]),
        "stage": stage,
        "hit_rule": ev.rule.describe(),
        "sensitivity": star[stage]["sensitivity"],
        "fp_per_scan": {"before": star["before"]["fp_per_scan"], "after": star["after"]["fp_per_scan"]},
        "rules": (rules or Rules.defaults()).to_dict(),
        "sweep": sweep,
    }


def write_theta(src: str | Path | None, dst: str | Path, theta: float, provenance: dict[str, Any]) -> Path:
    """Copy checkpoint src (None -> shipped) to dst with META theta = theta and the calibration recorded.

    The payload is rewritten as read (weights, resume state, format untouched); only META changes:
    "theta", and "train"."theta_calibration" for the provenance (META's free-form record), so the
    checkpoint stays in the format of CONTRACTS.md.
    """
    if not 0.0 < float(theta) <= 1.0:
        raise ThresholdError(f"theta must be in (0, 1], got {theta}")
    ck = load_checkpoint(src)  # validates the file and names it in any error
    from ..checkpoint import shipped_checkpoint_path

    src_path = Path(src) if src is not None else shipped_checkpoint_path()
    payload = torch.load(src_path, map_location="cpu", weights_only=True)
    meta = dict(ck.meta)
    meta["theta"] = float(theta)
    meta["train"] = {**dict(meta.get("train") or {}), "theta_calibration": provenance}
    payload["meta"] = meta
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    load_checkpoint(dst)  # what was written must read back
    return dst
