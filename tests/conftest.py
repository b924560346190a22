"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """Where the shared real data lives (EANNO_SHARED_DATA, else ../shared/data beside the repository)."""
    return Path(os.environ.get("EANNO_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def real_ct_dir() -> Path:
    """The folder holding the real CT and its TotalSegmentator labels; skips where it is absent."""
    folder = shared_data_dir() / "ct-real-small"
    if not (folder / "example_ct_sm.nii.gz").is_file():
        pytest.skip(f"real CT not found in {folder} (set EANNO_SHARED_DATA to the shared data folder)")
    return folder
