"""Converters from public pancreas label maps (MSD Task07, PANORAMA) to the 6-class map, written as
AbdomenAtlas case folders that the training and evaluation readers take."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Names load from their submodules on first use (PEP 562), so that a command line's --help does not pay
# for scipy, torch or MONAI it only needs when it runs.
_WHERE = {
    "ConvertError": "convert",
    "convert_dataset": "convert",
    "find_pairs": "convert",
    "MSD_TASK07": "tables",
    "PANORAMA": "tables",
    "table_for": "tables",
}

if TYPE_CHECKING:  # the names as type checkers and IDEs see them
    from .convert import ConvertError, convert_dataset, find_pairs
    from .tables import MSD_TASK07, PANORAMA, table_for


def __getattr__(name: str) -> object:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["MSD_TASK07", "PANORAMA", "ConvertError", "convert_dataset", "find_pairs", "table_for"]
