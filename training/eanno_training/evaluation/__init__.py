"""Evaluation: lesion matching with a configurable hit rule, FROC sweeps before and after post-processing,
theta* for a target sensitivity, patient-level figures in the paper's Table 1 layout, the FROC plot."""

from .froc import (
    DEFAULT_THETAS,
    CaseSweep,
    Froc,
    froc,
    froc_score,
    labels_case,
    stages_from_refine,
    sweep_case,
)
from .matching import LESION_CLASSES, CaseMatch, HitRule, components, match_case
from .patient import patient_stats, table_markdown
from .stats import bootstrap_f1, f1_score, wilson

__all__ = [
    "DEFAULT_THETAS",
    "LESION_CLASSES",
    "CaseMatch",
    "CaseSweep",
    "Froc",
    "HitRule",
    "bootstrap_f1",
    "components",
    "f1_score",
    "froc",
    "froc_score",
    "labels_case",
    "match_case",
    "patient_stats",
    "stages_from_refine",
    "sweep_case",
    "table_markdown",
    "wilson",
]
