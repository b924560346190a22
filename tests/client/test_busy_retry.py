"""The client's answer to "server busy": jittered exponential back-off, bounded in total, counted as retries."""

from __future__ import annotations

import pytest
from eanno_client.connection import Connection, ConnectionConfig, ServerConnectionError
from tritonclient.utils import InferenceServerException

BUSY = "eanno_window: server busy: this request needs 1 of 1 slots, 0 free; retry later"


def refusing(times: int, message: str = BUSY, status: str = "StatusCode.UNAVAILABLE"):
    calls = {"n": 0}

    def fn() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise InferenceServerException(message, status=status)
        return "answer"

    return fn, calls


def test_busy_is_retried_beyond_retries_and_counted() -> None:
    with Connection(ConnectionConfig(url="127.0.0.1:1", retries=0, backoff_s=0.001)) as conn:
        fn, calls = refusing(6)
        assert conn.call("annotate", fn) == "answer"
        assert calls["n"] == 7 and conn.last_retries == 6


def test_busy_wait_is_bounded(monkeypatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr("eanno_client.connection.time.sleep", pauses.append)
    with Connection(ConnectionConfig(url="127.0.0.1:1", backoff_s=1.0, busy_wait_s=100.0)) as conn:
        fn, calls = refusing(10**6)
        with pytest.raises(ServerConnectionError) as e:
            conn.call("annotate", fn)
    assert sum(pauses) == pytest.approx(100.0)  # the last pause is cut to the bound
    # jittered: each pause in [d/2, d] of a doubling d capped at 30 s (all but the cut last one)
    d = 1.0
    for p in pauses[:-1]:
        assert d / 2 <= p <= d
        d = min(2 * d, 30.0)
    assert len(set(pauses)) > 3  # not a fixed schedule
    assert e.value.attempts == calls["n"] == len(pauses) + 1
    assert "still busy" in str(e.value) and "server busy" in str(e.value)


def test_other_unavailable_keeps_its_own_retries(monkeypatch) -> None:
    monkeypatch.setattr("eanno_client.connection.time.sleep", lambda s: None)
    with Connection(ConnectionConfig(url="127.0.0.1:1", retries=2)) as conn:
        fn, calls = refusing(10, message="failed to connect")
        with pytest.raises(ServerConnectionError) as e:
            conn.call("annotate", fn)
        assert calls["n"] == 3 and e.value.attempts == 3
        fn, calls = refusing(10, message="This protocol is restricted, expecting header 'x'")
        with pytest.raises(ServerConnectionError):
            conn.call("annotate", fn)
        assert calls["n"] == 1  # restricted: never retried
