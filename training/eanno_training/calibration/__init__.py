"""Calibration from a site's own data: the operating threshold (into the checkpoint META) and the
post-processing limits (a rules file eanno_postproc.load_rules reads)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Names load from their submodules on first use (PEP 562), so that a command line's --help does not pay
# for scipy, torch or MONAI it only needs when it runs.
_WHERE = {
    "LesionStat": "rules",
    "calibrate_rules": "rules",
    "lesion_stats": "rules",
    "rules_yaml": "rules",
    "ThresholdError": "threshold",
    "write_theta": "threshold",
}

if TYPE_CHECKING:  # the names as type checkers and IDEs see them
    from .rules import LesionStat, calibrate_rules, lesion_stats, rules_yaml
    from .threshold import ThresholdError, write_theta


def __getattr__(name: str) -> object:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["LesionStat", "ThresholdError", "calibrate_rules", "lesion_stats", "rules_yaml", "write_theta"]
