"""The rules file: every limit of the post-processing in one validated, typed, immutable object."""

from __future__ import annotations

import copy
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from eanno_contracts.labels import LESION_KEYS

from .errors import RulesError

DEFAULT_RULES_FILE = "rules.yaml"
CONNECTIVITIES = (6, 18, 26)
_LESION_KEYS = tuple(LESION_KEYS.values())
_TOP_KEYS = (
    "theta",
    "connectivity",
    "hu_clip",
    "pancreas_dilation_voxels",
    "volume_ratio_limit",
    "duct_classes",
    "hu_window",
    "organ",
)
_NESTED_KEYS = ("volume_ratio_limit", "hu_window")  # mappings merged key by key over the defaults
_ORGAN_KEYS = (
    "pancreas_ml",
    "max_pieces",
    "piece_min_ml",
    "in_view_min_ml",
    "anterior_of_spine_mm",
    "left_of_spine_mm",
    "phantom_peak_share",
)


@dataclass(frozen=True)
class OrganLimits:
    """Whole-scan plausibility limits behind the report's flags (eanno_postproc.flags)."""

    pancreas_ml: tuple[float, float]
    max_pieces: int
    piece_min_ml: float
    in_view_min_ml: float
    anterior_of_spine_mm: tuple[float, float]
    left_of_spine_mm: tuple[float, float]
    phantom_peak_share: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values, intervals as lists."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


def default_rules_text() -> str:
    """The packaged rules file, comments included (what `eanno-postproc rules` prints)."""
    return resources.files(__package__).joinpath(DEFAULT_RULES_FILE).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Rules:
    """Validated post-processing limits; build with `load_rules` or `Rules.from_dict`."""

    theta: float
    connectivity: int
    hu_clip: tuple[float, float]
    pancreas_dilation_voxels: int
    volume_ratio_limit: Mapping[str, float]
    duct_classes: tuple[str, ...]
    hu_window: Mapping[str, tuple[float, float]]
    organ: OrganLimits

    @classmethod
    def defaults(cls) -> Rules:
        """The packaged defaults (the paper's values)."""
        raw = _parse_yaml(default_rules_text(), f"packaged {DEFAULT_RULES_FILE}")
        missing = [k for k in _TOP_KEYS if k not in raw]
        if missing:  # a broken install, not a user error; still say exactly what is wrong
            raise RulesError(f"packaged {DEFAULT_RULES_FILE}: missing keys {missing}")
        return _build(raw, f"packaged {DEFAULT_RULES_FILE}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: Rules | None = None, source: str = "rules") -> Rules:
        """Rules from a (partial) mapping over `base` (default: the packaged defaults), validated."""
        if not isinstance(data, Mapping):
            raise RulesError(
                f"{source}: expected a mapping of rule names to values, got {type(data).__name__}"
            )
        merged = (base or cls.defaults()).to_dict()
        for key, value in data.items():
            if key not in _TOP_KEYS:
                raise RulesError(f"{source}: unknown key {key!r}; known keys: {', '.join(_TOP_KEYS)}")
            if key == "organ" and isinstance(value, Mapping):
                unknown = [k for k in value if k not in _ORGAN_KEYS]
                if unknown:
                    raise RulesError(
                        f"{source}: unknown key(s) {unknown} in organ; known: {', '.join(_ORGAN_KEYS)}"
                    )
                merged[key] = {**merged[key], **copy.deepcopy(dict(value))}
            elif key in _NESTED_KEYS and isinstance(value, Mapping):
                for sub in value:
                    if sub not in _LESION_KEYS:
                        raise RulesError(
                            f"{source}: unknown class {sub!r} in {key}; known classes: {', '.join(_LESION_KEYS)}"
                        )
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = copy.deepcopy(value)
        return _build(merged, source)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able plain dict that `from_dict` reads back to an equal Rules."""
        return {
            "theta": self.theta,
            "connectivity": self.connectivity,
            "hu_clip": list(self.hu_clip),
            "pancreas_dilation_voxels": self.pancreas_dilation_voxels,
            "volume_ratio_limit": dict(self.volume_ratio_limit),
            "duct_classes": list(self.duct_classes),
            "hu_window": {k: list(v) for k, v in self.hu_window.items()},
            "organ": self.organ.to_dict(),
        }


def load_rules(path: str | Path | None = None) -> Rules:
    """Rules from a YAML (or JSON) file holding the keys it changes; None -> the packaged defaults."""
    if path is None:
        return Rules.defaults()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise RulesError(f"{path}: cannot read the rules file ({e.strerror or e})") from e
    raw = _parse_yaml(text, str(path))
    return Rules.from_dict(raw, source=str(path))


def _parse_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise RulesError(f"{source}: not valid YAML/JSON: {e}") from e
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise RulesError(f"{source}: expected a mapping of rule names to values, got {type(raw).__name__}")
    return raw


def _number(value: Any, where: str) -> float:
    # bool is an int subclass; `true` as a limit is a typo, not the number 1
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise RulesError(f"{where}: expected a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise RulesError(f"{where}: expected a finite number, got {value!r}")
    return value


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise RulesError(f"{where}: expected an integer, got {value!r} ({type(value).__name__})")
    return int(value)


def _interval(value: Any, where: str) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise RulesError(f"{where}: expected [lo, hi], got {value!r}")
    lo, hi = _number(value[0], f"{where}[0]"), _number(value[1], f"{where}[1]")
    if lo > hi:
        raise RulesError(f"{where}: lo > hi ({lo:g} > {hi:g})")
    return lo, hi


def _per_class(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RulesError(f"{where}: expected a mapping with keys {', '.join(_LESION_KEYS)}, got {value!r}")
    unknown = [k for k in value if k not in _LESION_KEYS]
    missing = [k for k in _LESION_KEYS if k not in value]
    if unknown or missing:
        raise RulesError(
            f"{where}: keys must be {', '.join(_LESION_KEYS)} (unknown {unknown}, missing {missing})"
        )
    return value


def _build(raw: Mapping[str, Any], source: str) -> Rules:
    """Type-check and range-check a complete mapping of rules."""
    theta = _number(raw["theta"], f"{source}: theta")
    if not 0.0 < theta <= 1.0:
        raise RulesError(f"{source}: theta must be in (0, 1], got {theta:g}")
    connectivity = _integer(raw["connectivity"], f"{source}: connectivity")
    if connectivity not in CONNECTIVITIES:
        raise RulesError(f"{source}: connectivity must be 6, 18 or 26, got {connectivity}")
    dilation = _integer(raw["pancreas_dilation_voxels"], f"{source}: pancreas_dilation_voxels")
    if dilation < 1:  # 0 would remove every lesion: a lesion voxel is never a pancreas voxel
        raise RulesError(f"{source}: pancreas_dilation_voxels must be >= 1, got {dilation}")
    ratios = _per_class(raw["volume_ratio_limit"], f"{source}: volume_ratio_limit")
    ratio_limit = {k: _number(ratios[k], f"{source}: volume_ratio_limit.{k}") for k in _LESION_KEYS}
    for k, v in ratio_limit.items():
        if v < 0:
            raise RulesError(f"{source}: volume_ratio_limit.{k} must be >= 0, got {v:g}")
    duct = raw["duct_classes"]
    if not isinstance(duct, list | tuple) or any(c not in _LESION_KEYS for c in duct):
        raise RulesError(
            f"{source}: duct_classes must be a list drawn from {', '.join(_LESION_KEYS)}, got {duct!r}"
        )
    windows = _per_class(raw["hu_window"], f"{source}: hu_window")
    organ = _organ(raw["organ"], f"{source}: organ")
    return Rules(
        theta=theta,
        connectivity=connectivity,
        hu_clip=_interval(raw["hu_clip"], f"{source}: hu_clip"),
        pancreas_dilation_voxels=dilation,
        volume_ratio_limit=ratio_limit,
        duct_classes=tuple(dict.fromkeys(duct)),
        hu_window={k: _interval(windows[k], f"{source}: hu_window.{k}") for k in _LESION_KEYS},
        organ=organ,
    )


def _organ(value: Any, where: str) -> OrganLimits:
    """The organ plausibility limits, every key present and in range."""
    if not isinstance(value, Mapping):
        raise RulesError(f"{where}: expected a mapping with keys {', '.join(_ORGAN_KEYS)}, got {value!r}")
    missing = [k for k in _ORGAN_KEYS if k not in value]
    if missing:
        raise RulesError(f"{where}: missing keys {missing}")
    pieces = _integer(value["max_pieces"], f"{where}.max_pieces")
    share = _number(value["phantom_peak_share"], f"{where}.phantom_peak_share")
    if pieces < 1 or not 0.0 <= share <= 1.0:
        raise RulesError(
            f"{where}: max_pieces must be >= 1 and phantom_peak_share in [0, 1], got {pieces}, {share:g}"
        )
    return OrganLimits(
        pancreas_ml=_interval(value["pancreas_ml"], f"{where}.pancreas_ml"),
        max_pieces=pieces,
        piece_min_ml=_number(value["piece_min_ml"], f"{where}.piece_min_ml"),
        in_view_min_ml=_number(value["in_view_min_ml"], f"{where}.in_view_min_ml"),
        anterior_of_spine_mm=_interval(value["anterior_of_spine_mm"], f"{where}.anterior_of_spine_mm"),
        left_of_spine_mm=_interval(value["left_of_spine_mm"], f"{where}.left_of_spine_mm"),
        phantom_peak_share=share,
    )
