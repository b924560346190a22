"""Admission slots (eanno_serving.admission) across real processes: taken, refused, never leaked."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from pathlib import Path

import pytest
from eanno_contracts.admission import is_busy
from eanno_serving.admission import Admission, Busy, available_mb


def _hold(folder: str, slots: int, ready, release) -> None:
    """A child process (another window instance) holding one slot until told to let go (or killed)."""
    with Admission(slots, Path(folder)).admit(1):
        ready.set()
        release.wait(60)


def _child(folder: Path, slots: int = 2):
    ctx = mp.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold, args=(str(folder), slots, ready, release))
    p.start()
    assert ready.wait(30), "the child never took its slot"
    return p, release


def test_slots_needed_by_size() -> None:
    a = Admission(3, Path("/nonexistent"), unit_voxels=100)
    assert [a.need(v) for v in (1, 100, 101, 300, 10**9)] == [1, 1, 2, 3, 3]  # too large for all: takes all


def test_slots_are_shared_between_processes_and_freed_by_death(tmp_path) -> None:
    """Another process holds one of two slots: one more request fits, a third is refused "server busy";
    SIGKILL of the holder frees its slot (the kernel drops the lock), nothing to clean up by hand."""
    adm = Admission(2, tmp_path)
    child, _ = _child(tmp_path)
    try:
        with adm.admit(1):
            with pytest.raises(Busy) as e, adm.admit(1):
                pass
            assert is_busy(str(e.value)) and "1 of 2 slots" in str(e.value) and "0 free" in str(e.value)
        with pytest.raises(Busy), Admission(2, tmp_path, unit_voxels=1).admit(2):  # needs both: one is held
            pass
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join(30)
    with adm.admit(2 * adm.unit_voxels) as n:  # the dead holder's slot is free again
        assert n == 2


def test_a_failed_request_gives_its_slots_back(tmp_path) -> None:
    adm = Admission(1, tmp_path)
    with pytest.raises(RuntimeError), adm.admit(1):
        raise RuntimeError("the window failed")
    child, release = _child(tmp_path, slots=1)  # the slot is free: another process can take it
    release.set()
    child.join(30)
    assert child.exitcode == 0


def test_memory_reserve_refuses() -> None:
    assert 0 < available_mb() < float("inf")
    with pytest.raises(Busy) as e, Admission(1, Path("/tmp"), reserve_mb=10**9).admit(1):
        pass
    assert is_busy(str(e.value)) and "reserve" in str(e.value)


def test_cgroup_limit_binds(tmp_path) -> None:
    (tmp_path / "memory.max").write_text(str(3 * 2**30))
    (tmp_path / "memory.current").write_text(str(2 * 2**30))
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 99999999 kB\nMemAvailable: 50000000 kB\n")
    assert available_mb(meminfo, tmp_path) == 1024
    (tmp_path / "memory.max").write_text("max\n")
    assert available_mb(meminfo, tmp_path) == pytest.approx(50000000 / 1024)
