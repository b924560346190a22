"""eanno-server start/status/logs/stop as a user runs them, and its errors (busy port, broken repository)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from eanno_serving.cli import main
from eanno_serving.local import SHM_DIR, LocalServer, free_ports

from .server_fixtures import tiny_repository

pytestmark = [pytest.mark.server, pytest.mark.slow]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_repository(tmp_path_factory.mktemp("cli"))


def ports_args(grpc: int, http: int, metrics: int) -> list[str]:
    return ["--grpc-port", str(grpc), "--http-port", str(http), "--metrics-port", str(metrics)]


def test_start_status_logs_stop_round_trip(repo, tmp_path) -> None:
    runner, run = CliRunner(), str(tmp_path / "run")
    ports = free_ports(1)  # HTTP and metrics: port 0, any free one the server picks
    started = runner.invoke(
        main, ["start", "--repository", str(repo), "--run-dir", run, *ports_args(*ports, 0, 0)]
    )
    try:
        assert started.exit_code == 0, started.output
        assert f"gRPC 127.0.0.1:{ports[0]}" in started.output
        status = runner.invoke(main, ["status", "--json", "--run-dir", run])
        info = json.loads(status.output)
        assert (
            status.exit_code == 0 and info["running"] and info["ready"]
        )  # ready: asked on the picked HTTP port
        picked = (info["grpc_port"], info["http_port"], info["metrics_port"])
        assert picked[0] == ports[0] and 0 not in picked and len(set(picked)) == 3, picked
        assert info["urls"]["metrics"] == f"http://127.0.0.1:{picked[2]}/metrics"
        prefix = info["shm_prefix"]
        logs = runner.invoke(main, ["logs", "-n", "200", "--run-dir", run])
        assert logs.exit_code == 0 and "Started GRPCInferenceService" in logs.output
        with socket.create_connection(("127.0.0.1", ports[0]), timeout=2):
            pass  # bound on loopback
    finally:
        stopped = runner.invoke(main, ["stop", "--run-dir", run])
    assert stopped.exit_code == 0 and "stopped" in stopped.output
    assert runner.invoke(main, ["status", "--run-dir", run]).exit_code == 1
    assert list(SHM_DIR.glob(f"{prefix}*")) == []
    assert runner.invoke(main, ["stop", "--run-dir", run]).exit_code == 1  # nothing left to stop


def test_port_in_use_is_a_clear_error(repo, tmp_path) -> None:
    grpc, http, metrics = free_ports()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", http))
        busy.listen()
        result = CliRunner().invoke(
            main,
            [
                "start",
                "--repository",
                str(repo),
                "--run-dir",
                str(tmp_path),
                *ports_args(grpc, http, metrics),
            ],
        )
    assert result.exit_code == 1
    assert f"http port {http} on 127.0.0.1 is already in use" in result.output
    assert "Traceback" not in result.output


def test_broken_repository_dies_at_start_with_its_log_lines(repo, tmp_path) -> None:
    broken = tmp_path / "broken"
    (broken / "eanno_window" / "1").mkdir(parents=True)
    (broken / "eanno_window" / "config.pbtxt").write_text(
        'name: "eanno_window"\nbackend: "python"\nno_such_field: 1\n'
    )
    server = LocalServer(
        broken,
        **dict(zip(("grpc_port", "http_port", "metrics_port"), free_ports(), strict=True)),
        run_dir=tmp_path / "run",
        startup_timeout=60,
    )
    result = CliRunner().invoke(
        main,
        [
            "start",
            "--repository",
            str(broken),
            "--run-dir",
            str(tmp_path / "run"),
            *ports_args(*(server.ports[k] for k in ("grpc", "http", "metrics"))),
        ],
    )
    assert result.exit_code == 1
    assert "tritonserver exited with code" in result.output and "no_such_field" in result.output
    assert not (tmp_path / "run" / "server.json").exists()


def test_missing_repository_is_named(tmp_path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "start",
            "--repository",
            str(tmp_path / "nope"),
            "--run-dir",
            str(tmp_path),
            *ports_args(*free_ports()),
        ],
    )
    assert result.exit_code == 1 and f"model repository not found: {tmp_path / 'nope'}" in result.output


def test_a_second_start_in_the_same_run_folder_is_refused(repo, tmp_path) -> None:
    runner, run = CliRunner(), str(tmp_path / "run")
    assert (
        runner.invoke(
            main, ["start", "--repository", str(repo), "--run-dir", run, *ports_args(*free_ports())]
        ).exit_code
        == 0
    )
    try:
        second = runner.invoke(
            main, ["start", "--repository", str(repo), "--run-dir", run, *ports_args(*free_ports())]
        )
        assert second.exit_code == 1 and "a server already runs from" in second.output
    finally:
        assert runner.invoke(main, ["stop", "--run-dir", run]).exit_code == 0
