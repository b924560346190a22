"""The project's 6-class label map and conversion tables that map other label sets onto a target set."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import yaml
from eanno_contracts.errors import EannoError

from ..labelmap import CLASS_NAMES, LESION_LABELS, LESION_UNION_NAME

log = logging.getLogger(__name__)
__all__ = [
    "CLASS_NAMES",
    "LESION_LABELS",
    "LESION_UNION_NAME",
    "LabelTable",
    "LabelTableError",
    "load_label_table",
]


class LabelTableError(EannoError, ValueError):
    """A conversion table that cannot be used (unknown target, bad id, unreadable file)."""


@dataclass(frozen=True)
class LabelTable:
    """Maps source classes (names or integer ids) to target ids of `target` (index = id, 0 = background)."""

    target: tuple[str, ...]
    source: Mapping[str | int, int]
    class_map: Mapping[int, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping, *, base: Path | None = None) -> LabelTable:
        """Build and validate a table from {"target": [...], "source": {...}, "class_map": {...} | path}."""
        unknown = set(d) - {"target", "source", "class_map"}
        if unknown:
            raise LabelTableError(f"unknown key(s) in label table: {sorted(unknown)}")
        target = tuple(str(t) for t in d.get("target", CLASS_NAMES))
        if len(target) < 2 or target[0] != "background" or len(set(target)) != len(target):
            raise LabelTableError(f"target must start with 'background' and have unique names, got {target}")
        source: dict[str | int, int] = {}
        for key, value in dict(d.get("source", {})).items():
            tid = _target_id(value, target)
            source[_source_key(key)] = tid
        class_map = d.get("class_map", {})
        if isinstance(class_map, str | Path):
            class_map = read_class_map(Path(base or ".") / class_map)
        return cls(target, source, {int(k): str(v) for k, v in dict(class_map).items()})

    def lut(self, class_map: Mapping[int, str] | None = None, max_id: int = 255) -> np.ndarray:
        """A lookup array source id -> target id, using integer keys and names via the class map."""
        names = {**self.class_map, **(class_map or {})}
        out = np.zeros(max(max_id, *(k for k in self.source if isinstance(k, int)), *names, 0) + 1, np.uint8)
        for sid, name in names.items():
            if name in self.source:
                out[sid] = self.source[name]
        for key, tid in self.source.items():
            if isinstance(key, int):
                out[key] = tid
        return out

    def convert(self, labels: np.ndarray, class_map: Mapping[int, str] | None = None) -> np.ndarray:
        """Map an integer label array to target ids (unknown source ids become background)."""
        if labels.size and (labels.min() < 0):
            raise LabelTableError(f"label ids must be non-negative, found {int(labels.min())}")
        top = int(labels.max()) if labels.size else 0
        lut = self.lut(class_map, max_id=top)
        return lut[labels.astype(np.intp, copy=False)]

    def target_of(self, name: str) -> int | None:
        """The target id of a source class name (None when the table does not map it)."""
        return self.source.get(name)


def _source_key(key: object) -> str | int:
    """YAML/JSON keys: integers (or digit strings) are ids, anything else a class name."""
    if isinstance(key, bool):
        raise LabelTableError(f"bad source key {key!r}")
    if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
        return int(key)
    return str(key)


def _target_id(value: object, target: tuple[str, ...]) -> int:
    """A target given by id or by name, checked against the target list."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(target):
        return value
    if isinstance(value, str) and value in target:
        return target.index(value)
    raise LabelTableError(f"target {value!r} is not one of ids 0..{len(target) - 1} or names {list(target)}")


def read_class_map(path: Path) -> dict[int, str]:
    """Read an id -> name JSON/YAML map (such as TotalSegmentator's class map)."""
    try:
        data = yaml.safe_load(Path(path).read_text())  # JSON is YAML
    except (OSError, yaml.YAMLError) as e:
        raise LabelTableError(f"cannot read class map {path}: {e}") from e
    if not isinstance(data, dict):
        raise LabelTableError(f"class map {path} is not a mapping of id -> name")
    try:
        return {int(k): str(v) for k, v in data.items()}
    except ValueError as e:
        raise LabelTableError(f"class map {path}: keys must be integer ids ({e})") from e


def packaged_tables() -> dict[str, dict]:
    """The named tables shipped in label_tables.yaml."""
    text = resources.files("eanno_training.data").joinpath("label_tables.yaml").read_text()
    return yaml.safe_load(text)


def load_label_table(
    spec: str | Path | Mapping | None = None, *, class_map: Path | None = None
) -> LabelTable:
    """A table by packaged name ("eanno", "totalsegmentator", ...), YAML/JSON path, or dict; None -> "eanno"."""
    if isinstance(spec, Mapping):
        table = LabelTable.from_dict(spec)
    else:
        name = "eanno" if spec is None else str(spec)
        tables = packaged_tables()
        if name in tables:
            table = LabelTable.from_dict(tables[name])
        else:
            path = Path(name)
            if not path.is_file():
                raise LabelTableError(
                    f"label table {name!r}: neither a packaged table {sorted(tables)} nor a file"
                )
            try:
                data = yaml.safe_load(path.read_text())
            except yaml.YAMLError as e:
                raise LabelTableError(f"cannot parse label table {path}: {e}") from e
            if not isinstance(data, Mapping):
                raise LabelTableError(f"label table {path} is not a mapping")
            table = LabelTable.from_dict(data, base=path.parent)
    if class_map is not None:
        table = LabelTable(table.target, table.source, {**table.class_map, **read_class_map(class_map)})
    return table


def write_class_map(path: Path, names: tuple[str, ...] = CLASS_NAMES) -> None:
    """Write an id -> name JSON map (used next to combined label maps)."""
    Path(path).write_text(json.dumps({str(i): n for i, n in enumerate(names)}, indent=1))
