"""Several servers behind one client: each case goes to the least busy ready endpoint, and a case whose
endpoint stops answering is sent to another one (it is written once, from the one answer that came back)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np

from eanno_client.connection import RETRY_STATUSES, Connection, ConnectionConfig, ServerConnectionError

log = logging.getLogger(__name__)
T = TypeVar("T")


def is_unavailable(error: BaseException) -> bool:
    """Whether the error means the endpoint is down (gRPC UNAVAILABLE), so the request may go elsewhere."""
    cause = error.__cause__ if isinstance(error, ServerConnectionError) else error
    status = getattr(cause, "status", None)
    return callable(status) and str(status()) in RETRY_STATUSES


@dataclass
class Endpoint:
    """One server and what this client has seen of it."""

    config: ConnectionConfig
    in_flight: int = 0
    done: int = 0
    failed_over: int = 0  # requests that found it down and went to another endpoint
    down_until: float = 0.0  # monotonic time before which it is not tried again
    down_for: float = 0.0
    local: threading.local = field(default_factory=threading.local)  # one channel per thread and endpoint
    opened: list[Connection] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The endpoint's gRPC address."""
        return self.config.url


class EndpointPool:
    """Connections to one or more servers; `call` runs a request on the least busy endpoint that is up.

    With one endpoint, that endpoint's own retries (Connection.call) apply unchanged. With several, each
    request is tried once per endpoint; one that answers UNAVAILABLE is left out for a back-off
    (0.5 s doubling, as --retries) and the request goes to the next; when every endpoint is down the
    pool waits for the first to come back, up to --retries times.
    """

    def __init__(self, configs: Sequence[ConnectionConfig]) -> None:
        if not configs:
            raise ValueError("no endpoints")
        self.retries = configs[0].retries
        self.backoff_s = configs[0].backoff_s
        single = len(configs) == 1
        self.endpoints = [Endpoint(c if single else replace(c, retries=0)) for c in configs]
        self.lock = threading.Lock()

    @property
    def urls(self) -> list[str]:
        """The endpoints' addresses."""
        return [e.url for e in self.endpoints]

    def connection(self, endpoint: Endpoint) -> Connection:
        """This thread's connection to `endpoint` (made on first use)."""
        conn = getattr(endpoint.local, "conn", None)
        if conn is None:
            conn = Connection(endpoint.config)
            endpoint.local.conn = conn
            with self.lock:
                endpoint.opened.append(conn)
        return conn

    def _pick(self, tried: set[str]) -> Endpoint | None:
        """The least busy endpoint that is up and not yet tried for this request (fewest done on a tie)."""
        now = time.monotonic()
        with self.lock:
            up = [e for e in self.endpoints if e.url not in tried and e.down_until <= now]
            if not up:
                return None
            best = min(up, key=lambda e: (e.in_flight, e.done))
            best.in_flight += 1
            return best

    def _mark_down(self, endpoint: Endpoint) -> None:
        with self.lock:
            endpoint.down_for = self.backoff_s if endpoint.down_for == 0 else min(endpoint.down_for * 2, 30.0)
            endpoint.down_until = time.monotonic() + endpoint.down_for

    def call(self, what: str, fn: Callable[[Connection], T]) -> tuple[T, str]:
        """fn(connection) on the least busy endpoint that is up; (its result, the endpoint's URL)."""
        if len(self.endpoints) == 1:
            only = self.endpoints[0]
            with self.lock:
                only.in_flight += 1
            try:
                result = fn(self.connection(only))
            finally:
                with self.lock:
                    only.in_flight -= 1
            with self.lock:
                only.done += 1
            return result, only.url
        waits = 0
        tried: set[str] = set()
        errors: dict[str, str] = {}
        while True:
            endpoint = self._pick(tried)
            if endpoint is None:
                if waits >= self.retries:
                    detail = "; ".join(f"{u}: {m}" for u, m in errors.items()) or "all marked down"
                    raise ServerConnectionError(f"{what} failed: no endpoint answered ({detail})")
                with self.lock:
                    first_back = min(e.down_until for e in self.endpoints)
                pause = max(0.0, first_back - time.monotonic())
                log.warning("%s: every endpoint is down; trying again in %.1f s", what, pause)
                time.sleep(pause)
                waits += 1
                tried.clear()
                continue
            tried.add(endpoint.url)
            try:
                result = fn(self.connection(endpoint))
            except ServerConnectionError as e:
                if not is_unavailable(e):
                    raise
                self._mark_down(endpoint)
                errors[endpoint.url] = str(e)
                with self.lock:
                    endpoint.failed_over += 1
                log.warning("%s: %s stopped answering; sending it to another endpoint", what, endpoint.url)
                continue
            finally:
                with self.lock:
                    endpoint.in_flight -= 1
            with self.lock:
                endpoint.done += 1
                endpoint.down_for = 0.0
            return result, endpoint.url

    def annotate(
        self,
        volume: np.ndarray,
        spacing: np.ndarray,
        affine: np.ndarray,
        threshold: float | None = None,
        rules: dict[str, Any] | None = None,
    ) -> tuple[tuple[np.ndarray, np.ndarray, dict[str, Any]], str]:
        """Connection.annotate on the least busy endpoint; ((labels, removed, report), endpoint URL)."""
        return self.call(
            f"annotate {list(volume.shape)}",
            lambda conn: conn.annotate(volume, spacing, affine, threshold, rules),
        )

    def last_retries(self, url: str) -> int:
        """Retries of this thread's last call on the endpoint at `url` (Connection.last_retries)."""
        conn = next((getattr(e.local, "conn", None) for e in self.endpoints if e.url == url), None)
        return 0 if conn is None else conn.last_retries

    def shares(self) -> dict[str, dict[str, int]]:
        """Per endpoint: requests answered and requests that found it down."""
        with self.lock:
            return {e.url: {"done": e.done, "failed_over": e.failed_over} for e in self.endpoints}

    def close(self) -> None:
        """Close every connection opened by any thread."""
        for e in self.endpoints:
            for conn in e.opened:
                conn.close()
            e.opened.clear()

    def __enter__(self) -> EndpointPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
