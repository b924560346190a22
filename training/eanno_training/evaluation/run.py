"""The evaluation pipeline: cases -> probabilities (files or the predictor) -> FROC, theta*, patient table."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from eanno_postproc import Rules

from .cases import Case
from .froc import CaseSweep, Froc, froc, froc_score, sweep_case
from .matching import HitRule
from .patient import patient_stats, table_markdown

log = logging.getLogger(__name__)
ProbsFn = Callable[[Case], np.ndarray]


@dataclass
class Evaluation:
    """Everything one evaluation produced."""

    froc: Froc
    star: dict[str, Any]
    patient: dict[str, dict[str, Any]]  # stage -> patient_stats at theta* (or the given theta)
    theta: float | None
    rule: HitRule
    sweeps: list[CaseSweep]

    def to_json(self) -> dict[str, Any]:
        """The JSON file's content."""
        return {
            "hit_rule": self.rule.describe(),
            "theta_star": self.star,
            "theta": self.theta,
            "froc_score": {s: froc_score(self.froc, s) for s in ("before", "after")},
            "froc": self.froc.to_json(),
            "patient": self.patient,
            "cases": [s.name for s in self.sweeps],
        }

    def table(self, title: str = "Patient-level results") -> str:
        """Markdown Table 1 with 'before' / 'after post-processing' columns."""
        t = "n/a" if self.theta is None else f"{self.theta:.4g}"
        return table_markdown(
            {
                f"before post-processing (theta {t})": self.patient["before"],
                f"after post-processing (theta {t})": self.patient["after"],
            },
            title=title,
        )


def predictor_probs(checkpoint: str | Path | None, *, device: str = "cpu", batch_size: int = 2) -> ProbsFn:
    """A function Case -> probabilities (canonical grid) using the sliding-window predictor."""
    from ..checkpoint import load_checkpoint
    from ..predictor import Predictor

    ck = load_checkpoint(checkpoint)
    predictor = Predictor(ck.build(device), ck.meta, batch_size=batch_size, device=device)
    return lambda case: predictor.predict(case.ct.astype(np.float32), case.spacing)


def evaluate_cases(
    cases: Iterable[Case],
    probs_fn: ProbsFn,
    thetas: Sequence[float],
    *,
    rule: HitRule | None = None,
    rules: Rules | None = None,
    target: float = 0.99,
    select_on: str = "after",
    theta: float | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> Evaluation:
    """Sweep every case; theta* from the pooled FROC; patient table at theta* (or at `theta` if given)."""
    rule = rule or HitRule()
    thetas = sorted(set(float(t) for t in thetas) | ({float(theta)} if theta is not None else set()))
    sweeps = []
    for case in cases:
        probs = probs_fn(case)
        sweeps.append(
            sweep_case(
                case.name, case.ct, probs, case.truth, thetas, affine=case.affine, rules=rules, rule=rule
            )
        )
        del probs
        if progress:
            progress(case.name)
    result = froc(sweeps)
    star = result.theta_star(target, select_on)
    # no theta given and the target not reached: report at the most sensitive theta, flagged in star
    at = (
        theta
        if theta is not None
        else star.get("theta", None)
        if star.get("reached")
        else star.get("best_theta")
    )
    patient: dict[str, dict[str, Any]] = {}
    if at is not None:
        i = result.thetas.index(at)
        for stage in ("before", "after"):
            patient[stage] = patient_stats([s.stage(stage)[i] for s in sweeps], n_boot=n_boot, seed=seed)
    return Evaluation(result, star, patient, at, rule, sweeps)


def write_atomic(path: str | Path, text: str) -> Path:
    """Write text to a temporary name beside path, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_json(path: str | Path, data: Any) -> Path:
    """JSON (indented) written atomically."""
    return write_atomic(path, json.dumps(data, indent=1, default=float) + "\n")
