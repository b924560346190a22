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
    good = {
        "errors": 0,
        "errors_seen": [],
        "requests": 40,
        "clients": 4,
        "shm_left_after_stop": [],
        "rss_mb": {"warm": 500.0, "end": 520.0},
        "shm_mb": {"warm": 64.0, "end": 64.0},
    }
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


def test_burst_small_volumes_refused_retried_none_lost(tmp_path) -> None:
    """`make soak SOAK_ARGS="--burst 8"` in small: 6 requests at once, 4 window instances, 1 slot."""
    soak = load_soak()
    repo = limited_repository(tmp_path / "repo", max_voxels=10**7, admission_slots=1, window_instances=4)
    figures = soak.burst_local(repo, 6, (96, 96, 48), tmp_path / "run", window_instances=4, admission_slots=1)
    print(figures)
    assert figures["failed"] == [], figures
    assert figures["answered"] == 6 and figures["identical_answers"], figures
    assert sum(figures["retries"]) >= 1 and figures["refusals_logged"] == sum(figures["retries"]), figures
