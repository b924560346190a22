"""Every exception class our packages define is a domain error: it derives from eanno_contracts' EannoError."""

from __future__ import annotations

import importlib
import pkgutil

import click
import pytest
from eanno_contracts.errors import EannoError

PACKAGES = [
    "eanno_contracts",
    "eanno_postproc",
    "eanno_training",
    "eanno_serving",
    "eanno_export",
    "eanno_client",
]


def our_exception_classes() -> list[type]:
    """Exception classes defined in any importable module of our packages (Triton model files excepted)."""
    found: dict[str, type] = {}
    for name in PACKAGES:
        package = pytest.importorskip(name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            # triton_models import the Triton stub's pb_utils (and define no exceptions); __main__ runs a CLI
            if ".triton_models" in info.name or info.name.endswith(".__main__"):
                continue
            module = importlib.import_module(info.name)
            for obj in vars(module).values():
                if isinstance(obj, type) and issubclass(obj, BaseException) and obj.__module__ == info.name:
                    found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return list(found.values())


def test_every_exception_class_of_ours_is_an_eanno_error() -> None:
    classes = our_exception_classes()
    assert len(classes) >= 15, [c.__name__ for c in classes]  # the walk found the packages' errors
    # click's exceptions are the layer's output (eanno_contracts.cli.DomainException), not domain errors
    bad = [
        f"{c.__module__}.{c.__qualname__}"
        for c in classes
        if not issubclass(c, EannoError) and not issubclass(c, click.ClickException)
    ]
    assert not bad, (
        "exception classes that do not derive from eanno_contracts.errors.EannoError:\n" + "\n".join(bad)
    )
