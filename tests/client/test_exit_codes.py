"""eanno-client's exit codes (CONTRACTS.md "Exit codes"): 3 no server answers, 4 a partial batch, 5 a missing
optional package, 1 a server that answers and refuses. Server-free: the exit codes of real servers are
checked where those tests start one (test_tls_server.py, test_endpoints_server.py, test_faults_server.py)."""

from __future__ import annotations

import json
import socket
import sys

from click.testing import CliRunner
from eanno_client.cli import main
from eanno_client.connection import ServerUnreachable
from eanno_client.readiness import NotReadyError, explained
from eanno_contracts.errors import ExitCode


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_missing_optional_package_fails_its_case_and_exits_5(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(
        sys.modules, "SimpleITK", None
    )  # `import SimpleITK` raises ImportError, as uninstalled
    case = tmp_path / "ct.mha"
    case.write_bytes(b"ObjectType = Image\n")
    out = tmp_path / "out"
    args = ["annotate", str(case), "--out", str(out), "--url", f"127.0.0.1:{closed_port()}", "--no-check"]
    r = CliRunner().invoke(main, [*args, "--retries", "0", "--json"])
    assert r.exit_code == ExitCode.MISSING_DEPENDENCY == 5, r.output
    failed = json.loads(r.stdout)["cases"][0]
    assert failed["status"] == "failed" and failed["exit_code"] == 5
    assert (
        "needs SimpleITK (pip install 'eanno-client[all]')" in failed["error"]
        and str(case) in failed["error"]
    )
    assert json.loads((out / "failures.jsonl").read_text().splitlines()[0])["case"] == "ct"


def test_refused_no_answer_and_tls_are_unreachable_a_refusing_server_is_not() -> None:
    port = closed_port()
    url = f"127.0.0.1:{port}"
    refused = explained(
        url, "StatusCode.UNAVAILABLE", f"failed to connect to all addresses; {url}: Connection refused"
    )
    assert isinstance(refused, ServerUnreachable) and refused.exit_code == ExitCode.UNREACHABLE == 3
    assert str(refused).startswith(f"nothing answers at {url}")
    for status, message in [
        ("StatusCode.DEADLINE_EXCEEDED", "Deadline Exceeded"),
        ("StatusCode.UNAVAILABLE", "Ssl handshake failed: CERTIFICATE_VERIFY_FAILED"),
        ("StatusCode.UNAVAILABLE", "DNS resolution failed for nowhere.invalid:8001"),
    ]:
        assert isinstance(explained(url, status, message), ServerUnreachable), message
    restricted = explained(url, "StatusCode.UNAVAILABLE", "This protocol is restricted, expecting header 'x'")
    assert type(restricted) is NotReadyError and restricted.exit_code == ExitCode.BAD_INPUT == 1


def test_health_of_nothing_listening_exits_3(tmp_path) -> None:
    r = CliRunner().invoke(main, ["health", "--url", f"127.0.0.1:{closed_port()}", "--retries", "0"])
    assert r.exit_code == 3 and "nothing answers at" in r.output and "Traceback" not in r.output, r.output
