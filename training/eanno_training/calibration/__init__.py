"""Calibration from a site's own data: the operating threshold (into the checkpoint META) and the
post-processing limits (a rules file eanno_postproc.load_rules reads)."""

from .rules import LesionStat, calibrate_rules, lesion_stats, rules_yaml
from .threshold import ThresholdError, write_theta

__all__ = ["LesionStat", "ThresholdError", "calibrate_rules", "lesion_stats", "rules_yaml", "write_theta"]
