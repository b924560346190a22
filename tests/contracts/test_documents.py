"""CONTRACTS.md's tables equal the code, and every document the code cites exists in the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from eanno_contracts.labels import CLASS_NAMES, LESION_CLASSES, LESION_KEYS

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = REPO / "CONTRACTS.md"


def table_rows(section: str) -> list[list[str]]:
    """The body rows of the first table under `## section` in CONTRACTS.md, cells stripped."""
    text = CONTRACTS.read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in body.splitlines() if line.startswith("|")]
    return [[c.strip() for c in r.strip("|").split("|")] for r in rows[2:]]


def test_label_table_is_the_code() -> None:
    rows = table_rows("Labels")
    assert [(int(r[0]), r[1]) for r in rows] == list(enumerate(CLASS_NAMES))
    assert {int(r[0]): r[2] for r in rows if r[3] == "yes"} == LESION_KEYS
    assert tuple(int(r[0]) for r in rows if r[3] == "yes") == LESION_CLASSES


def test_ensemble_table_is_what_the_repository_writer_writes() -> None:
    repository = pytest.importorskip(
        "eanno_serving.repository", reason="eanno_serving (and tritonclient) not installed"
    )
    from google.protobuf import json_format

    patch = [16, 24, 8]
    meta = {
        "classes": list(CLASS_NAMES),
        "spacing": [1.5, 1.5, 2.0],
        "patch_size": patch,
        "intensity": {"clip": [-1000, 1000], "mean": 0.0, "std": 1.0},
        "theta": 0.003,
        "step": 0.5,
        "train": {},
    }

    def dims_text(tensor: str, dims: list[int]) -> str:
        """[6, 16, 24, 8] -> "[classes, *patch_size]": the table's symbolic dims."""
        words = [
            "classes" if tensor in ("probs", "coarse") and i == 0 else str(v) for i, v in enumerate(dims)
        ]
        if dims[-3:] == patch:
            words = [*words[:-3], "*patch_size"]
        return "[" + ", ".join(words) + "]"

    written = set()
    for name, config in repository.model_configs(repository.ServingSpec(meta), "python-onnxruntime").items():
        d = json_format.MessageToDict(config, preserving_proto_field_name=True)
        for direction in ("input", "output"):
            for t in d.get(direction, []):
                kind = f"{direction} (optional)" if t.get("optional") else direction
                dims = dims_text(t["name"], [int(v) for v in t["dims"]])
                written.add((name, kind, t["name"], t["data_type"].removeprefix("TYPE_"), dims))
    documented = {tuple(row) for row in table_rows("Ensemble tensors")}
    assert documented == written, (
        "CONTRACTS.md 'Ensemble tensors' differs from eanno_serving.repository.model_configs: "
        f"only documented {sorted(documented - written)}, only written {sorted(written - documented)}"
    )


def git_files(pattern: str) -> list[str]:
    """The repository's files (tracked, and untracked but not ignored) matching a git pathspec."""
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", pattern],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()


def test_every_document_the_code_cites_exists() -> None:
    documents = {Path(rel).name for rel in git_files("*.md")}
    missing = [
        f"{rel} cites {name}"
        for rel in git_files("*.py")
        if (REPO / rel).is_file()
        for name in sorted(set(re.findall(r"\b[A-Z][A-Z_]+\.md\b", (REPO / rel).read_text())))
        if name not in documents
    ]
    assert not missing, "documents cited by the code but not in the repository:\n" + "\n".join(missing)
