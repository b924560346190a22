"""Converters from public pancreas label maps (MSD Task07, PANORAMA) to the 6-class map, written as
AbdomenAtlas case folders that the training and evaluation readers take."""

from .convert import ConvertError, convert_dataset, find_pairs
from .tables import MSD_TASK07, PANORAMA, table_for

__all__ = ["MSD_TASK07", "PANORAMA", "ConvertError", "convert_dataset", "find_pairs", "table_for"]
