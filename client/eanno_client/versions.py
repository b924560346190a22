"""`--version` for eanno-client and each of its commands: the package, and the served model when a server answers."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

import click

DIST = "eanno-client"


def package_version(dist: str = DIST) -> str:
    """The installed version of a distribution ('unknown' when not installed)."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def server_line(url_values: Any) -> str:
    """'server HOST:PORT: model NAME vVERSION (ensemble ready)' per address, or why it could not be asked."""
    from eanno_client.connection import ConnectionConfig, ServerConnectionError
    from eanno_client.readiness import check_ready
    from eanno_client.urls import parse_urls

    try:
        urls = parse_urls(url_values)
    except ValueError as e:
        return f"server: {e}"
    lines = []
    for u in urls:
        try:
            ready = check_ready(ConnectionConfig(url=u.address, retries=0))
            lines.append(
                f"server {u.address}: model {ready.model_name or '?'} v{ready.model_version or '?'} "
                "(ensemble ready)"
            )
        except ServerConnectionError as e:
            lines.append(f"server {u.address}: not reached ({e})")
    return "\n".join(lines)


def _show(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    text = f"eanno-client {package_version()} (Python {platform.python_version()}"
    try:
        text += f", tritonclient {metadata.version('tritonclient')})"
    except metadata.PackageNotFoundError:
        text += ")"
    # --url is eager, so it (or EANNO_URL) is known here; ask the server only when the user named one
    url = ctx.params.get("url")
    source = ctx.get_parameter_source("url") if "url" in ctx.params else None
    if url and source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT"):
        text += "\n" + server_line(url)
    click.echo(text)
    ctx.exit(0)


def version_option(fn: Any) -> Any:
    """`--version`: the client's version; with --url (or EANNO_URL) also the served model's name and version."""
    return click.option(
        "--version",
        is_flag=True,
        expose_value=False,
        callback=_show,
        help="Show the version (and, with --url, the served model's) and exit.",
    )(fn)
