"""Calibration from a site's own data: the operating threshold (into the checkpoint META) and the
post-processing limits (a rules file eanno_postproc.load_rules reads)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eanno_contracts.lazy import lazy_getattr

# Names load from their submodules on first use (PEP 562), so that a command line's --help does not pay
# for scipy, torch or MONAI it only needs when it runs.
__getattr__ = lazy_getattr(
    __name__,
    rules="LesionStat calibrate_rules lesion_stats rules_yaml",
    threshold="ThresholdError write_theta",
)

if TYPE_CHECKING:  # the names as type checkers and IDEs see them
    from .rules import LesionStat, calibrate_rules, lesion_stats, rules_yaml
    from .threshold import ThresholdError, write_theta

__all__ = ["LesionStat", "ThresholdError", "calibrate_rules", "lesion_stats", "rules_yaml", "write_theta"]
