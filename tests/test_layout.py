"""The layout shows the architecture: each folder one job, dependencies pointing one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {
    "contracts": "eanno_contracts",
    "postproc": "eanno_postproc",
    "training": "eanno_training",
    "export": "eanno_export",
    "serving": "eanno_serving",
    "client": "eanno_client",
}
# What each of our distributions may import of ours (DESIGN.md, "Architecture"): every one the contracts
# (CONTRACTS.md), which import nothing of ours.
ALLOWED = {
    "eanno_contracts": set(),
    "eanno_postproc": {"eanno_contracts"},
    "eanno_training": {"eanno_contracts", "eanno_postproc"},
    "eanno_serving": {"eanno_contracts", "eanno_postproc"},
    "eanno_export": {"eanno_contracts", "eanno_training", "eanno_serving", "eanno_postproc"},
    "eanno_client": {"eanno_contracts"},
}
FORBIDDEN_THIRD_PARTY = {"eanno_client": {"torch", "monai"}, "eanno_postproc": {"torch", "monai"}}


def imported_roots(path: Path) -> set[str]:
    """Top-level module names a Python file imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("folder", sorted(PACKAGES) + ["docker", "tests"])
def test_every_folder_has_a_readme(folder: str) -> None:
    assert (REPO / folder / "README.md").is_file(), f"{folder}/README.md is missing"


@pytest.mark.parametrize("folder", sorted(PACKAGES))
def test_every_python_folder_is_a_distribution(folder: str) -> None:
    assert (REPO / folder / "pyproject.toml").is_file()
    assert (REPO / folder / PACKAGES[folder] / "__init__.py").is_file()


@pytest.mark.parametrize("folder", sorted(PACKAGES))
def test_dependencies_point_one_way(folder: str) -> None:
    package = PACKAGES[folder]
    ours = set(PACKAGES.values())
    bad: list[str] = []
    for path in sorted((REPO / folder).rglob("*.py")):
        roots = imported_roots(path)
        for other in (roots & ours) - {package} - ALLOWED[package]:
            bad.append(f"{path.relative_to(REPO)} imports {other}")
        for other in roots & FORBIDDEN_THIRD_PARTY.get(package, set()):
            bad.append(f"{path.relative_to(REPO)} imports {other}")
    assert not bad, "\n".join(bad)


def test_contracts_need_numpy_only() -> None:
    """The client installs the contracts too: numpy and the standard library (click: the command lines' layer)."""
    import sys

    bad = []
    for path in sorted((REPO / "contracts").rglob("*.py")):
        allowed = {"numpy", "eanno_contracts"} | ({"click"} if path.name == "cli.py" else set())
        for root in imported_roots(path) - allowed:
            if root not in sys.stdlib_module_names:
                bad.append(f"{path.relative_to(REPO)} imports {root}")
    assert not bad, "\n".join(bad)
