"""EfficientAnno adaptive post-processing of pancreatic lesion candidates (numpy in, numpy out)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from eanno_contracts.labels import CLASS_NAMES

# Names load from their submodules on first use (PEP 562): `eanno-postproc --help` and code that only
# needs the rules or the errors do not pay for scipy and cc3d (the pipeline).
_WHERE = {
    "InputError": "errors",
    "RulesError": "errors",
    "RefineResult": "pipeline",
    "refine": "pipeline",
    "Rules": "rules",
    "default_rules_text": "rules",
    "load_rules": "rules",
}

if TYPE_CHECKING:  # the names as type checkers and IDEs see them
    from .errors import InputError, RulesError
    from .pipeline import RefineResult, refine
    from .rules import Rules, default_rules_text, load_rules


def __getattr__(name: str) -> object:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
