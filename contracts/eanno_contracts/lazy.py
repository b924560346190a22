"""Lazy package exports (PEP 562): a package's names load from their submodules on first use."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_getattr(package: str, **modules: str) -> Callable[[str], object]:
    """A module `__getattr__` for `package`: `submodule="NameA NameB"` imports each name from `.submodule`."""
    where = {name: module for module, names in modules.items() for name in names.split()}

    def __getattr__(name: str) -> object:
        if name in where:
            return getattr(importlib.import_module(f".{where[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
