"""The layout shows the architecture: each folder one job, dependencies pointing one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {
    "postproc": "eanno_postproc",
    "training": "eanno_training",
    "export": "eanno_export",
    "model_repository": "eanno_serving",
    "client": "eanno_client",
}
# What each of our distributions may import of ours (DESIGN.md, "Architecture").
ALLOWED = {
    "eanno_postproc": set(),
    "eanno_training": {"eanno_postproc"},
    "eanno_serving": {"eanno_postproc"},
    "eanno_export": {"eanno_training", "eanno_serving", "eanno_postproc"},
    "eanno_client": set(),
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
