"""Connection options: headers, TLS arguments, retries with backoff on UNAVAILABLE only."""

from __future__ import annotations

import pytest
from eanno_client.connection import Connection, ConnectionConfig, ServerConnectionError, parse_header
from tritonclient.utils import InferenceServerException


def test_parse_header():
    assert parse_header("Authorization: Bearer a:b") == ("authorization", "Bearer a:b")
    with pytest.raises(ValueError, match="not 'Name: value'"):
        parse_header("Authorization Bearer")


def test_client_cert_needs_key(tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(ServerConnectionError, match="go together"):
        Connection(ConnectionConfig(client_cert=cert))
    with pytest.raises(ServerConnectionError, match="cannot read the root certificate"):
        Connection(ConnectionConfig(root_cert=tmp_path / "missing.pem"))


def flaky(failures: int, status: str):
    """A call that raises `failures` times with `status`, then answers 42; counts its calls."""
    calls = []

    def fn():
        calls.append(1)
        if len(calls) <= failures:
            raise InferenceServerException("down", status=status)
        return 42

    return fn, calls


def test_retries_with_backoff_on_unavailable_only():
    conn = Connection(ConnectionConfig(url="127.0.0.1:1", retries=3, backoff_s=0.01))
    fn, calls = flaky(2, "StatusCode.UNAVAILABLE")
    assert conn.call("x", fn) == 42 and len(calls) == 3
    fn, calls = flaky(5, "StatusCode.UNAVAILABLE")
    with pytest.raises(ServerConnectionError, match="after 4 attempts.*is the server running") as err:
        conn.call("x", fn)
    assert len(calls) == 4 and err.value.attempts == 4
    fn, calls = flaky(1, "StatusCode.INVALID_ARGUMENT")
    with pytest.raises(ServerConnectionError, match="INVALID_ARGUMENT") as err:
        conn.call("x", fn)
    assert len(calls) == 1 and err.value.attempts == 1
    conn.close()


def test_deadline_is_not_retried_and_names_the_timeout():
    conn = Connection(ConnectionConfig(url="127.0.0.1:1", retries=3, backoff_s=0.01, timeout_s=0.5))
    fn, calls = flaky(5, "StatusCode.DEADLINE_EXCEEDED")
    with pytest.raises(
        ServerConnectionError, match=r"DEADLINE_EXCEEDED.*--timeout 0.5 s.*not retried"
    ) as err:
        conn.call("x", fn)
    assert len(calls) == 1 and err.value.attempts == 1
    conn.close()
