"""Synthetic abdominal CT phantoms (pancreas, duct, lesions, hard negatives) in the AbdomenAtlas layout."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eanno_contracts.lazy import lazy_getattr

# Names load from their submodules on first use (PEP 562), so that a command line's --help does not pay
# for scipy, torch or MONAI it only needs when it runs.
__getattr__ = lazy_getattr(
    __name__,
    generator="ORIENTATIONS Phantom generate_phantom",
    writer="generate_phantom_set phantom_seeds write_atlas_case",
)

if TYPE_CHECKING:  # the names as type checkers and IDEs see them
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
