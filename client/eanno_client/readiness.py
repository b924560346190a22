"""One quick check before a batch: is something answering gRPC at the address, is the server ready, is the
ensemble (and each model it needs) ready. Fails in seconds with what is wrong and what to try."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from eanno_client.connection import (
    ENSEMBLE,
    RESTRICTED,
    SERVED_MODELS,
    Connection,
    ConnectionConfig,
    ServerConnectionError,
    ServerUnreachable,
)

log = logging.getLogger(__name__)
MODEL_PREFIX = "eanno_"  # every model of the EfficientAnno repository (the ensemble and what it calls)
PROBE_TIMEOUT_S = 2.5  # nothing listening must fail in under 3 s (client/README.md, "Connection")


class NotReadyError(ServerConnectionError):
    """The server at an address cannot take cases now; the message says why and what to try."""


@dataclass(frozen=True)
class Ready:
    """What the check found on a ready server."""

    url: str
    model_name: str | None
    model_version: str | None


def explain(url: str, status: str, message: str, tls: bool = False) -> str:
    """A gRPC failure in plain words: what is wrong at `url` and what to try (`tls`: certificates were given)."""
    return _explain(url, status, message, tls)[0]


def explained(url: str, status: str, message: str, tls: bool = False) -> ServerConnectionError:
    """A gRPC failure as the error to raise: ServerUnreachable (exit 3) when no gRPC server of ours answers
    (refused, no answer, TLS, another port, DNS), NotReadyError (exit 1) when the server answers and refuses."""
    text, unreachable = _explain(url, status, message, tls)
    return ServerUnreachable(text) if unreachable else NotReadyError(text)


def _explain(url: str, status: str, message: str, tls: bool) -> tuple[str, bool]:
    """What is wrong at `url` and what to try, and whether it means no gRPC server of ours answers there."""
    low = message.lower()
    if "certificate_verify_failed" in low or "certificate verify failed" in low:
        return (
            f"{url}: the server's certificate is not signed by the --root-cert given (CERTIFICATE_VERIFY_FAILED): "
            "give the CA certificate that signed the server's"
        ), True
    if "ssl" in low or "handshake" in low or "tls" in low or "certificate" in low:
        return (
            f"{url}: the TLS handshake failed: check --root-cert, and --client-cert/--client-key if the server "
            "requires a client certificate"
        ), True
    if "http/2" in low or "settings frame" in low:  # an HTTP/1 server answered the gRPC preface
        return (
            f"{url} answers, but not with gRPC (is it Triton's HTTP port 8000 or metrics port 8002? gRPC is "
            f"8001 by default): try --url with the gRPC port"
        ), True
    # accepted, then hung up: a TLS server met in plain text, or an HTTP port. gRPC reports only its last
    # attempt: for `localhost` that may be [::1] refusing while 127.0.0.1 accepted, so ask TCP itself.
    if "socket closed" in low or ("refused" in low and accepts_tcp(url)):
        http = http_kind(url)
        if http:
            return (
                f"{url} is {http}, not gRPC (it answered over HTTP/1): give Triton's gRPC port "
                "(8001 by default; `eanno-server status` prints it)"
            ), True
        if tls:
            return (
                f"{url} closed the connection during the TLS handshake: does it require a client certificate "
                "(--client-cert and --client-key)?"
            ), True
        return (
            f"{url} answers, but closed the gRPC connection: is it a TLS server (give --root-cert PEM) or "
            "Triton's HTTP port 8000 / metrics port 8002 (gRPC is 8001 by default)?"
        ), True
    if any(w in low for w in ("dns", "domain name", "resolv", "lookup", "name or service not known")):
        host = url.rsplit(":", 1)[0]
        return f"cannot find the host {host!r} of {url} (DNS): check the name, or give its IP address", True
    if RESTRICTED in low:  # Triton answers UNAVAILABLE here too, but the server is up and refuses
        return f"{url}: {message.strip()}: pass that header with --header 'NAME: VALUE'", False
    if "DEADLINE" in status:
        return (
            f"no answer from {url} within {PROBE_TIMEOUT_S:g} s: check the host and port, a firewall, "
            f"or whether the server is still starting (eanno-client health --url {url})"
        ), True
    if "UNAVAILABLE" in status:
        return (
            f"nothing answers at {url} (connection refused): is the server running? Start it "
            f"(eanno-server start, or docker compose up in docker/), check the host and the gRPC port "
            f"(8001 by default), then try eanno-client health --url {url}"
        ), True
    return f"{url}: {status} {message.strip()}", False


def accepts_tcp(url: str, timeout_s: float = 1.0) -> bool:
    """Whether any address of `url`'s host accepts a TCP connection on its port."""
    import socket

    host, _, port = url.rpartition(":")
    try:
        infos = socket.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_STREAM)
    except (OSError, ValueError):
        return False
    for family, kind, proto, _, address in infos:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(timeout_s)
                sock.connect(address)
                return True
        except OSError:
            continue
    return False


def http_kind(url: str, timeout_s: float = 1.0) -> str | None:
    """'Triton's HTTP port' / 'Triton's metrics port' / 'an HTTP server' when `url` answers plain HTTP, else None."""
    import urllib.error
    import urllib.request

    # the metrics port answers any path with its exposition text, so it is asked first and recognised by it
    for path, kind in (("/metrics", "Triton's metrics port"), ("/v2/health/live", "Triton's HTTP port")):
        try:
            with urllib.request.urlopen(f"http://{url}{path}", timeout=timeout_s) as r:
                body = r.read(4096)
                if r.status == 200 and (path != "/metrics" or b"nv_" in body or b"# HELP" in body):
                    return kind
        except urllib.error.HTTPError:
            continue  # an HTTP answer, just not this path
        except (OSError, ValueError):
            return None  # no HTTP at all (a TLS server, or nothing)
    return "an HTTP server"


def explain_error(url: str, error: ServerConnectionError, tls: bool = False) -> ServerConnectionError:
    """A ServerConnectionError from a gRPC failure in plain words, unreachable or not (itself when not one)."""
    cause = error.__cause__
    status, message = getattr(cause, "status", None), getattr(cause, "message", None)
    if callable(status) and callable(message):
        return explained(url, str(status()), str(message() or ""), tls)
    return error


def _probe(conn: Connection, what: str, fn: Any) -> Any:
    """fn() once, no retries; ServerUnreachable or NotReadyError in plain words on any gRPC failure."""
    from tritonclient.utils import InferenceServerException

    try:
        return fn()
    except InferenceServerException as e:
        raise explained(conn.config.url, str(e.status()), e.message() or what, conn.config.tls) from e


def _model_states(conn: Connection, opts: dict[str, Any]) -> list[dict[str, Any]]:
    """The repository index's models; where the server restricts that protocol (the image does, by default),
    the ensemble's models one by one through the health protocol, which stays open."""
    from tritonclient.utils import InferenceServerException

    c = conn.client
    try:
        return list(c.get_model_repository_index(as_json=True, **opts).get("models", []))
    except InferenceServerException as e:
        if RESTRICTED not in str(e.message()):
            raise NotReadyError(
                explain(conn.config.url, str(e.status()), e.message() or "repository index", conn.config.tls)
            ) from e

    def state(model: str) -> str:
        ready = _probe(conn, f"{model} ready", lambda: c.is_model_ready(model, **opts))
        return "READY" if ready else "UNAVAILABLE"

    return [{"name": m, "version": "", "state": state(m)} for m in SERVED_MODELS]


def not_ready_models(index: list[dict[str, Any]]) -> list[str]:
    """'name vN STATE: reason' for every model in the repository index that is not READY."""
    return [
        f"{m.get('name', '?')} v{m.get('version') or '-'} {m.get('state') or 'UNLOADED'}"
        + (f": {m['reason']}" if m.get("reason") else "")
        for m in index
        if m.get("state") != "READY"
    ]


def check_ready(config: ConnectionConfig, timeout_s: float = PROBE_TIMEOUT_S) -> Ready:
    """Live, ready, the ensemble READY; NotReadyError (which model and why) otherwise, within about timeout_s."""
    probe = replace(config, timeout_s=timeout_s, retries=0)
    with Connection(probe) as conn:
        opts = {"headers": config.headers or None, "client_timeout": timeout_s}
        c = conn.client
        if not _probe(conn, "server live", lambda: c.is_server_live(**opts)):
            raise NotReadyError(f"{config.url}: the server answers but is not live (shutting down?)")
        models = _model_states(conn, opts)
        ensemble = [m for m in models if m.get("name") == ENSEMBLE]
        if not ensemble:
            names = ", ".join(sorted({m.get("name", "?") for m in models})) or "none"
            raise NotReadyError(
                f"{config.url}: the server has no model {ENSEMBLE!r} (it serves: {names}); "
                "is this the EfficientAnno repository (eanno-server start)?"
            )
        # The ensemble can be READY while a model it calls through BLS (the window calls eanno_segmenter)
        # failed to load, so every model of ours must be READY, not only the ensemble.
        ours = [m for m in models if str(m.get("name", "")).startswith(MODEL_PREFIX)]
        bad = not_ready_models(ours)
        if bad or not any(m.get("state") == "READY" for m in ensemble):
            raise NotReadyError(
                f"{config.url}: the ensemble {ENSEMBLE} is not ready; "
                + "; ".join(bad or not_ready_models(ensemble))
                + f" (details: eanno-client models --url {config.url}, and the server's log)"
            )
        ready = _probe(conn, "server ready", lambda: c.is_server_ready(**opts))
        if not ready:
            bad = not_ready_models(models)
            raise NotReadyError(
                f"{config.url}: the server is not ready"
                + (f": {'; '.join(bad)}" if bad else " (still loading models?)")
            )
        try:
            point = conn.operating_point()
        except ServerConnectionError:
            point = {}
    return Ready(config.url, point.get("model_name"), point.get("model_version"))
