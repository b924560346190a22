"""A server killed hard (SIGKILL, as the OOM killer does) mid-request: no stub outlives it, and the next
`start` in the same run folder clears what it left and starts cleanly."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from eanno_serving.local import LocalServer, free_ports, orphan_stubs
from eanno_serving.smoke import annotate_remote, connect

from .conftest import phantom
from .server_fixtures import tiny_repository

pytestmark = [pytest.mark.server, pytest.mark.slow]


def _server(repo, run_dir) -> LocalServer:
    grpc, http, metrics = free_ports()
    return LocalServer(repo, grpc_port=grpc, http_port=http, metrics_port=metrics, run_dir=run_dir)


def test_sigkill_mid_request_leaves_no_stub_and_start_recovers(tmp_path) -> None:
    repo = tiny_repository(tmp_path)
    first = _server(repo, tmp_path / "run").start()
    prefix, pid = first.state.shm_prefix, first.state.pid
    assert len(orphan_stubs(prefix)) >= 3, "expected the Python models' stubs to run"
    client = connect(first.urls["grpc"])
    failures = []

    def request() -> None:
        try:
            annotate_remote(client, phantom((58, 58, 58), 5), (1.0, 1.0, 1.0))
        except Exception as e:  # the server dies under it: an error is the expected outcome
            failures.append(e)

    thread = threading.Thread(target=request)
    thread.start()
    time.sleep(0.5)  # the request is in the window model by now
    os.kill(pid, signal.SIGKILL)
    thread.join(60)
    deadline = time.monotonic() + 20
    while orphan_stubs(prefix) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert orphan_stubs(prefix) == [], "Python-backend stubs outlived their server"
    # A second server in the same run folder: starts cleanly, removes the dead one's shared memory.
    second = _server(repo, tmp_path / "run")
    with second:
        assert first.leftover_shm(prefix) == []
        assert annotate_remote(
            connect(second.urls["grpc"]), phantom((20, 20, 10), 0), (1.0, 1.0, 1.0)
        ).labels.shape == (20, 20, 10)
        new_prefix = second.state.shm_prefix
    assert second.leftover_shm(new_prefix) == [] and orphan_stubs(new_prefix) == []


def test_stop_after_a_hard_death_kills_orphans_and_removes_shared_memory(tmp_path) -> None:
    """Without the lifeline (stubs of an older repository), `eanno-server stop` still cleans up."""
    repo = tiny_repository(tmp_path)
    server = _server(repo, tmp_path / "run").start()
    prefix, pid = server.state.shm_prefix, server.state.pid
    for stub in orphan_stubs(prefix):
        os.kill(stub, signal.SIGSTOP)  # frozen: its lifeline cannot act, as an orphan without one
    os.kill(pid, signal.SIGKILL)
    time.sleep(1)
    stubs = orphan_stubs(prefix)
    assert stubs, "stopped stubs should still be there"
    LocalServer.attach(tmp_path / "run").stop()
    deadline = time.monotonic() + 10
    while orphan_stubs(prefix) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert orphan_stubs(prefix) == []
    assert server.leftover_shm(prefix) == []
