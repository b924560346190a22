"""EfficientAnno adaptive post-processing of pancreatic lesion candidates (numpy in, numpy out)."""

from eanno_contracts.labels import CLASS_NAMES

from .errors import InputError, RulesError
from .pipeline import RefineResult, refine
from .rules import Rules, default_rules_text, load_rules

__all__ = [
    "CLASS_NAMES",
    "InputError",
    "RefineResult",
    "Rules",
    "RulesError",
    "default_rules_text",
    "load_rules",
    "refine",
]
