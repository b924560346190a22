"""The connection options of eanno-client's server commands, and turning them into connections."""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from eanno_client.urls import DEFAULT_URL
from eanno_client.versions import version_option

if TYPE_CHECKING:  # tritonclient is imported where a command runs
    from eanno_client.connection import Connection, ConnectionConfig
    from eanno_client.endpoints import EndpointPool


@dataclass(frozen=True)
class ConnectionArgs:
    """The connection options as given on the command line (connection_options hands them over as one)."""

    url: tuple[str, ...]
    root_cert: Path | None
    client_cert: Path | None
    client_key: Path | None
    headers: tuple[str, ...]
    timeout: float
    retries: int

    def configs(self, timeout_cap: float | None = None) -> list[ConnectionConfig]:
        """One ConnectionConfig per server address (UsageError for a malformed address or header)."""
        timeout = self.timeout if timeout_cap is None else min(self.timeout, timeout_cap)
        return make_configs(
            self.url, self.root_cert, self.client_cert, self.client_key, self.headers, timeout, self.retries
        )


PEM = click.Path(exists=True, dir_okay=False, path_type=Path)  # a certificate or key file


def connection_options(fn: Any) -> Any:
    """The options every command that talks to the server takes, handed to it as `connection: ConnectionArgs`."""
    options = [
        # eager: --version reads it to ask the server for its model
        click.option(
            "--url",
            "url",
            envvar="EANNO_URL",
            multiple=True,
            default=(DEFAULT_URL,),
            show_default=True,
            show_envvar=True,
            is_eager=True,
            metavar="HOST:PORT",
            help="Server gRPC address (also grpc://HOST:PORT; http://HOST:PORT is read as the gRPC "
            "address). Repeat it, or give a comma list in EANNO_URL, to spread cases over several "
            "servers.",
        ),
        click.option("--root-cert", type=PEM, help="PEM CA certificate to verify the server (turns on TLS)."),
        click.option("--client-cert", type=PEM, help="PEM client cert for mutual TLS (with --client-key)."),
        click.option("--client-key", type=PEM, help="PEM private key of the client certificate."),
        click.option(
            "--header",
            "headers",
            multiple=True,
            metavar="'NAME: VALUE'",
            help="Extra request header, repeatable, e.g. --header 'Authorization: Bearer TOKEN'.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0.1),
            default=600.0,
            show_default=True,
            help="Seconds one request may take.",
        ),
        click.option(
            "--retries",
            type=click.IntRange(min=0),
            default=4,
            show_default=True,
            help="Retries (exponential backoff from 0.5 s) while the server is UNAVAILABLE; a 'server busy' "
            "refusal is retried apart (jittered back-off, up to 600 s).",
        ),
    ]

    @functools.wraps(fn)
    def wrapper(
        *args: Any,
        url: tuple[str, ...],
        root_cert: Path | None,
        client_cert: Path | None,
        client_key: Path | None,
        headers: tuple[str, ...],
        timeout: float,
        retries: int,
        **kw: Any,
    ) -> Any:
        connection = ConnectionArgs(url, root_cert, client_cert, client_key, headers, timeout, retries)
        return fn(*args, connection=connection, **kw)

    for option in reversed(options):
        wrapper = option(wrapper)
    return version_option(wrapper)


def server_urls(values: str | tuple[str, ...]) -> list[str]:
    """The gRPC addresses from --url / EANNO_URL (notes on stderr); UsageError in plain words for a bad one."""
    from eanno_client.urls import parse_urls

    try:
        urls = parse_urls(values)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--url") from e
    for u in urls:
        for note in u.notes:
            click.echo(f"note: {note}", err=True)
    return [u.address for u in urls]


def make_configs(
    url: str | tuple[str, ...],
    root_cert: Path | None,
    client_cert: Path | None,
    client_key: Path | None,
    headers: tuple[str, ...],
    timeout: float,
    retries: int,
) -> list[ConnectionConfig]:
    """One ConnectionConfig per server address given (UsageError for a malformed address or header)."""
    first = make_config(DEFAULT_URL, root_cert, client_cert, client_key, headers, timeout, retries)
    return [replace(first, url=u) for u in server_urls(url)]


def ready_endpoints(configs: list[ConnectionConfig]) -> list[ConnectionConfig]:
    """The servers that are ready, checked at once (a few seconds at most).

    When none is: ServerUnreachable (exit 3) when no server answered at all, else NotReadyError (exit 1).
    """
    from concurrent.futures import ThreadPoolExecutor

    from eanno_client.connection import ServerConnectionError, ServerUnreachable
    from eanno_client.readiness import NotReadyError, check_ready

    def check(c: ConnectionConfig) -> ServerConnectionError | None:
        try:
            check_ready(c)
        except ServerConnectionError as e:
            return e
        return None

    with ThreadPoolExecutor(max_workers=len(configs)) as pool:
        problems = list(pool.map(check, configs))
    ready = [c for c, p in zip(configs, problems, strict=True) if p is None]
    found = [p for p in problems if p is not None]
    if not ready:
        text = "\n".join(str(p) for p in found)
        raise (
            ServerUnreachable(text)
            if all(isinstance(p, ServerUnreachable) for p in found)
            else NotReadyError(text)
        )
    for p in found:
        click.echo(f"warning: left out: {p}", err=True)
    return ready


def make_config(
    url: str,
    root_cert: Path | None,
    client_cert: Path | None,
    client_key: Path | None,
    headers: tuple[str, ...],
    timeout: float,
    retries: int,
) -> ConnectionConfig:
    """A ConnectionConfig from the command-line options (UsageError for a malformed header)."""
    from eanno_client.connection import ConnectionConfig, parse_header

    parsed: dict[str, str] = {}
    for h in headers:
        try:
            name, value = parse_header(h)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--header") from e
        parsed[name] = value
    return ConnectionConfig(
        url=url,
        root_cert=root_cert,
        client_cert=client_cert,
        client_key=client_key,
        headers=parsed,
        timeout_s=timeout,
        retries=retries,
    )


def open_connection(config: ConnectionConfig) -> Connection:
    """A Connection; ServerConnectionError (exit 1) saying why it cannot be made (certificates, key pairs)."""
    from eanno_client.connection import Connection

    return Connection(config)


def open_pool(configs: list[ConnectionConfig]) -> EndpointPool:
    """An EndpointPool over the configs; ServerConnectionError (exit 1) saying why a connection cannot be made."""
    from eanno_client.endpoints import EndpointPool

    pool = EndpointPool(configs)
    try:
        for e in pool.endpoints:
            pool.connection(e)  # certificates and key pairs are checked here, before any case is read
    except BaseException:
        pool.close()
        raise
    return pool
