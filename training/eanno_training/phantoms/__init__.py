"""Synthetic abdominal CT phantoms (pancreas, duct, lesions, hard negatives) in the AbdomenAtlas layout."""

from .generator import ORIENTATIONS, Phantom, generate_phantom
from .writer import generate_phantom_set, phantom_seeds, write_atlas_case

__all__ = [
    "ORIENTATIONS",
    "Phantom",
    "generate_phantom",
    "generate_phantom_set",
    "phantom_seeds",
    "write_atlas_case",
]
