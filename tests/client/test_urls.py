"""Server addresses as people type them, several of them, and what the client says when nothing listens."""

from __future__ import annotations

import json
import socket

import pytest
from click.testing import CliRunner
from eanno_client.cli import main
from eanno_client.urls import parse_url, parse_urls, split_urls

from .conftest import make_phantom, save_nifti


def test_forms_people_type():
    assert parse_url("gpu1:8001").address == "gpu1:8001" and parse_url("gpu1:8001").notes == ()
    assert parse_url("grpc://10.0.0.5:9001").address == "10.0.0.5:9001"
    u = parse_url("http://127.0.0.1:8001")
    assert u.address == "127.0.0.1:8001" and "taking http://HOST:PORT as the gRPC address" in u.notes[0]
    u = parse_url("https://gpu1:8001/v2/models")
    assert u.address == "gpu1:8001" and any("path /v2/models is ignored" in n for n in u.notes)
    u = parse_url("gpu1")
    assert u.address == "gpu1:8001" and "no port given" in u.notes[0]
    assert parse_url("[::1]:8001").address == "[::1]:8001"


def test_http_and_metrics_ports_get_a_hint():
    assert "HTTP port by default; gRPC is 8001 (try --url gpu1:8001)" in parse_url("gpu1:8000").notes[0]
    assert "metrics port" in parse_url("http://gpu1:8002").notes[-1]


@pytest.mark.parametrize(
    "text,words",
    [
        ("", "empty"),
        ("gpu1:80a1", "port '80a1' is not a number"),
        ("gpu1:70000", "1 to 65535"),
        ("ftp://gpu1:8001", "unknown scheme ftp://"),
        ("gpu 1:8001", "not a host name"),
    ],
)
def test_bad_addresses_say_what_to_give(text, words):
    with pytest.raises(ValueError, match=words) as e:
        parse_url(text)
    assert "HOST:PORT" in str(e.value)


def test_several_addresses():
    assert split_urls(("a:8001,b:8001", " c:8001 ")) == ["a:8001", "b:8001", "c:8001"]
    assert [u.address for u in parse_urls(("a:8001", "grpc://a:8001", "b"))] == ["a:8001", "b:8001"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nothing_listening_fails_at_once_naming_the_url(tmp_path):
    """One readiness check before the batch: no per-case retries (0.5 + 1 + 2 + 4 s), exit 3, what to try."""
    p = make_phantom("RAS", shape=(16, 16, 6))
    path = save_nifti(tmp_path / "ct.nii.gz", p.ct, p.affine)
    url = f"127.0.0.1:{closed_port()}"
    r = CliRunner().invoke(main, ["annotate", str(path), "--out", str(tmp_path / "out"), "--url", url])
    assert r.exit_code == 3, r.output
    assert f"nothing answers at {url}" in r.output and "is the server running" in r.output
    assert "eanno-client health --url" in r.output and "retry" not in r.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_bad_url_is_a_usage_error(tmp_path):
    r = CliRunner().invoke(
        main, ["annotate", str(tmp_path), "--out", str(tmp_path / "o"), "--url", "gpu1:80a1"]
    )
    assert r.exit_code == 2 and "port '80a1' is not a number" in r.output and "Traceback" not in r.output


def test_several_urls_none_ready(tmp_path):
    p = make_phantom("RAS", shape=(16, 16, 6))
    path = save_nifti(tmp_path / "ct.nii.gz", p.ct, p.affine)
    a, b = f"127.0.0.1:{closed_port()}", f"127.0.0.1:{closed_port()}"
    r = CliRunner(env={"EANNO_URL": f"{a},{b}"}).invoke(
        main, ["annotate", str(path), "--out", str(tmp_path / "o")]
    )
    assert (
        r.exit_code == 3 and f"nothing answers at {a}" in r.output and f"nothing answers at {b}" in r.output
    )


def test_version_everywhere():
    for args in (
        ["--version"],
        ["annotate", "--version"],
        ["health", "--version"],
        ["loadtest", "--version"],
        ["review", "--version"],
        ["rank", "--version"],
        ["status", "--version"],
    ):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 0 and r.output.startswith("eanno-client 0.1.0 (Python "), (args, r.output)
    url = f"127.0.0.1:{closed_port()}"
    r = CliRunner().invoke(main, ["--version", "--url", url])
    assert r.exit_code == 0 and f"server {url}: not reached (nothing answers" in r.output


def test_loadtest_options_as_perf_analyzer_spells_them():
    from eanno_client.loadtest import arrivals, parse_range

    assert parse_range("1:4") == (1, 2, 3, 4) and parse_range("2:8:2") == (2, 4, 6, 8)
    assert parse_range("0.5:2:0.5", float) == (0.5, 1.0, 1.5, 2.0)
    with pytest.raises(ValueError, match="START:END"):
        parse_range("4")
    # Poisson arrivals: seeded, within the duration, mean gap 1/rate
    times = arrivals(2.0, 10_000.0, 4000, seed=3)
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    assert len(times) == 4000 and times == arrivals(2.0, 10_000.0, 4000, seed=3)
    assert abs(sum(gaps) / len(gaps) - 0.5) < 0.03
    assert max(arrivals(1.0, 5.0, None)) < 5.0


def test_loadtest_csv_and_capacity_from_records():
    from eanno_client.loadstats import Record, capacity, summarise
    from eanno_client.loadtest_text import csv_text

    fast = [Record(i * 1.0, i * 1.0 + 1.0, 10, endpoint="a:1" if i % 2 else "b:1") for i in range(10)]
    slow = [Record(i * 0.5, i * 0.5 + 4.0, 10, endpoint="a:1") for i in range(10)]
    steps = [summarise(fast, 1), summarise(slow, None, rate=2.0)]
    assert steps[0]["endpoints"] == {
        "a:1": {"ok": 5, "errors": 0, "share": 0.5},
        "b:1": {"ok": 5, "errors": 0, "share": 0.5},
    }
    assert steps[0]["cts_per_hour"] == 3600.0 and steps[1]["mode"] == "open"
    # within p95 <= 2 s only the fast step counts; within 10 s the slow one takes more per hour
    assert capacity(steps, 2.0)["step"] == {"mode": "closed", "concurrency": 1, "request_rate": None}
    assert capacity(steps, 10.0)["step"]["mode"] == "open"
    assert capacity(steps, 0.5)["step"] is None
    rows = csv_text({"steps": steps}).splitlines()
    assert rows[0].startswith("mode,concurrency,request_rate") and len(rows) == 3
    assert rows[1].split(",")[:3] == ["closed", "1", ""] and rows[2].split(",")[:3] == ["open", "", "2.0"]
    assert json.dumps(steps)  # JSON-able


def test_a_refusal_from_one_address_is_not_nothing_listening():
    """gRPC names only its last attempt: [::1] refusing while 127.0.0.1 accepted is a server that answers."""
    from eanno_client.readiness import explain

    grpc_text = (
        "failed to connect to all addresses; last error: UNKNOWN: ipv6:%5B::1%5D:{}: Connection refused"
    )
    with (
        socket.socket() as listener
    ):  # accepts TCP (the kernel's backlog), speaks no gRPC: a TLS server in plain text
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        text = explain(f"127.0.0.1:{port}", "StatusCode.UNAVAILABLE", grpc_text.format(port))
        assert "is it a TLS server (give --root-cert PEM)" in text, text
    # the same text once nothing listens there any more
    text = explain(f"127.0.0.1:{port}", "StatusCode.UNAVAILABLE", grpc_text.format(port))
    assert text.startswith(f"nothing answers at 127.0.0.1:{port} (connection refused)"), text
