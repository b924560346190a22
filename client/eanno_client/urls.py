"""Server addresses as people type them: `host:port`, `grpc://host:port`, `http://host:port`, comma lists."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

GRPC_PORT = 8001  # Triton's default ports: HTTP 8000, gRPC 8001, metrics 8002
HTTP_PORT = 8000
METRICS_PORT = 8002
DEFAULT_URL = f"localhost:{GRPC_PORT}"
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)$")


@dataclass(frozen=True)
class ServerUrl:
    """One gRPC address (`host:port`, what tritonclient takes) and notes on how it was read from the text."""

    address: str
    host: str
    port: int
    typed: str
    notes: tuple[str, ...] = field(default=())


def parse_url(text: str) -> ServerUrl:
    """`host:port`, `grpc://host:port` or `http(s)://host:port[/path]` -> the gRPC address; ValueError in plain words."""
    typed = text
    text = text.strip()
    notes: list[str] = []
    if not text:
        raise ValueError("the server address is empty: give HOST:PORT, e.g. localhost:8001")
    scheme, sep, rest = text.partition("://")
    if sep:
        scheme = scheme.lower()
        if scheme in ("http", "https"):
            notes.append(
                f"{typed!r}: eanno-client speaks gRPC, not HTTP; taking {scheme}://HOST:PORT as the "
                "gRPC address HOST:PORT"
            )
        elif scheme not in ("grpc", "grpcs"):
            raise ValueError(
                f"{typed!r}: unknown scheme {scheme}://; give HOST:PORT or grpc://HOST:PORT "
                "(e.g. localhost:8001)"
            )
        text = rest
    hostport, slash, path = text.partition("/")
    if slash and path.strip("/"):
        notes.append(f"{typed!r}: the path /{path} is ignored (a gRPC address has none)")
    if hostport.startswith("["):  # IPv6 literal: [::1]:8001
        host, _, port_text = hostport.partition("]")
        host += "]"
        port_text = port_text[1:] if port_text.startswith(":") else port_text
    else:
        host, _, port_text = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
    if not host or not _HOST.match(host):
        raise ValueError(
            f"{typed!r}: {host or '(nothing)'!r} is not a host name or IP address; give HOST:PORT, "
            "e.g. localhost:8001 or 10.0.0.5:8001"
        )
    if not port_text:
        port = GRPC_PORT
        notes.append(f"{typed!r}: no port given, using Triton's gRPC default {GRPC_PORT}")
    else:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(
                f"{typed!r}: port {port_text!r} is not a number from 1 to 65535; give HOST:PORT, "
                f"e.g. {host}:{GRPC_PORT}"
            )
        port = int(port_text)
    if port == HTTP_PORT:
        notes.append(
            f"port {HTTP_PORT} is Triton's HTTP port by default; gRPC is {GRPC_PORT} "
            f"(try --url {host}:{GRPC_PORT})"
        )
    elif port == METRICS_PORT:
        notes.append(
            f"port {METRICS_PORT} is Triton's metrics port by default; gRPC is {GRPC_PORT} "
            f"(try --url {host}:{GRPC_PORT})"
        )
    return ServerUrl(f"{host}:{port}", host.strip("[]"), port, typed, tuple(notes))


def split_urls(values: str | tuple[str, ...] | list[str]) -> list[str]:
    """Repeated --url values and comma lists (EANNO_URL='a:8001,b:8001') as one list, empty items dropped."""
    items = [values] if isinstance(values, str) else list(values)
    return [part.strip() for item in items for part in item.split(",") if part.strip()]


def parse_urls(values: str | tuple[str, ...] | list[str]) -> list[ServerUrl]:
    """Every address given, parsed, duplicates dropped (ValueError naming the first bad one)."""
    out: list[ServerUrl] = []
    for text in split_urls(values):
        url = parse_url(text)
        if url.address not in {u.address for u in out}:
            out.append(url)
    if not out:
        raise ValueError("no server address given: --url HOST:PORT (or EANNO_URL)")
    return out
