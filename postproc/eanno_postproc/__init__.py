"""EfficientAnno adaptive post-processing of pancreatic lesion candidates (numpy in, numpy out)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eanno_contracts.labels import CLASS_NAMES
from eanno_contracts.lazy import lazy_getattr

# Names load from their submodules on first use (PEP 562): `eanno-postproc --help` and code that only
# needs the rules or the errors do not pay for scipy and cc3d (the pipeline).
__getattr__ = lazy_getattr(
    __name__,
    errors="InputError RulesError",
    pipeline="RefineResult refine",
    rules="Rules default_rules_text load_rules",
)

if TYPE_CHECKING:  # the names as type checkers and IDEs see them
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
