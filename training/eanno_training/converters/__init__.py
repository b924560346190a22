"""Converters from public pancreas label maps (MSD Task07, PANORAMA) to the 6-class map, written as
AbdomenAtlas case folders that the training and evaluation readers take."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eanno_contracts.lazy import lazy_getattr

# Names load from their submodules on first use (PEP 562), so that a command line's --help does not pay
# for scipy, torch or MONAI it only needs when it runs.
__getattr__ = lazy_getattr(
    __name__, convert="ConvertError convert_dataset find_pairs", tables="MSD_TASK07 PANORAMA table_for"
)

if TYPE_CHECKING:  # the names as type checkers and IDEs see them
    from .convert import ConvertError, convert_dataset, find_pairs
    from .tables import MSD_TASK07, PANORAMA, table_for

__all__ = ["MSD_TASK07", "PANORAMA", "ConvertError", "convert_dataset", "find_pairs", "table_for"]
