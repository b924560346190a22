"""Synthetic abdominal CT phantoms (pancreas, duct, lesions, hard negatives) in the AbdomenAtlas layout."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Names load from their submodules on first use (PEP 562), so that a command line's --help does not pay
# for scipy, torch or MONAI it only needs when it runs.
_WHERE = {
    "ORIENTATIONS": "generator",
    "Phantom": "generator",
    "generate_phantom": "generator",
    "generate_phantom_set": "writer",
    "phantom_seeds": "writer",
    "write_atlas_case": "writer",
}

if TYPE_CHECKING:  # the names as type checkers and IDEs see them
    from .generator import ORIENTATIONS, Phantom, generate_phantom
    from .writer import generate_phantom_set, phantom_seeds, write_atlas_case


def __getattr__(name: str) -> object:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ORIENTATIONS",
    "Phantom",
    "generate_phantom",
    "generate_phantom_set",
    "phantom_seeds",
    "write_atlas_case",
]
