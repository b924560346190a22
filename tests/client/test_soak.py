"""A 30 s soak (`make soak` runs 5 minutes): 4 concurrent clients, zero errors, server RSS and /dev/shm
stable after the warm-up, no shared-memory region left after stop."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from .faults_helpers import limited_repository

pytestmark = [pytest.mark.server, pytest.mark.slow]
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "soak.py"


def load_soak():
    spec = importlib.util.spec_from_file_location("soak", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_verdict_catches_each_failure() -> None:
    soak = load_soak()
    good = {"errors": 0, "errors_seen": [], "requests": 40, "clients": 4, "shm_left_after_stop": [],
            "rss_mb": {"warm": 500.0, "end": 520.0}, "shm_mb": {"warm": 64.0, "end": 64.0}}
    assert soak.verdict(good) == []
    assert "errors" in soak.verdict({**good, "errors": 1, "errors_seen": ["x"]})[0]
    assert "RSS grew" in soak.verdict({**good, "rss_mb": {"warm": 500.0, "end": 700.0}})[0]
    assert "/dev/shm grew" in soak.verdict({**good, "shm_mb": {"warm": 64.0, "end": 192.0}})[0]
    assert "left after stop" in soak.verdict({**good, "shm_left_after_stop": ["/dev/shm/x"]})[0]


def test_soak_30s_four_clients(tmp_path) -> None:
    soak = load_soak()
    repo = limited_repository(tmp_path / "repo", max_voxels=10**7)
    figures = soak.soak_local(repo, 30.0, 4, tmp_path / "run", soak.phantom_cases(shape=(48, 44, 24)))
    print(figures)
    assert figures["failed"] == [], figures
    assert figures["requests"] >= 20 and figures["rss_mb"]["warm"] > 50, figures
