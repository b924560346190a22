"""`eanno-client health` and `models`: what the server says about itself."""

from __future__ import annotations

import json
import sys

import click

from eanno_client.connection_cli import ConnectionArgs, connection_options, open_connection


@click.command()
@connection_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def health(
    connection: ConnectionArgs,
    as_json: bool,
) -> None:
    """Is the server live and ready; model versions; the operating threshold in use. Exit 1 if not ready, 3 if no server answers."""
    from eanno_client.connection import ServerConnectionError
    from eanno_client.readiness import explain_error

    infos = []
    for config in connection.configs(timeout_cap=30.0):
        with open_connection(config) as conn:
            try:
                infos.append(conn.health())
            except ServerConnectionError as e:
                raise explain_error(config.url, e, config.tls) from e.__cause__
    if as_json:
        click.echo(json.dumps(infos[0] if len(infos) == 1 else infos, indent=2))
    for info in [] if as_json else infos:
        click.echo(
            f"server {info['url']}: live={info['live']} ready={info['ready']} "
            f"ensemble ready={info['ensemble_ready']}"
        )
        click.echo(
            f"model {info['model_name']} v{info['model_version']}: operating threshold (theta) "
            f"{info['theta']}, spacing {info['model_spacing']} mm"
        )
        for m in info["models"]:
            click.echo(f"  {m['name']} v{m['version'] or '-'}: {m['state']} {m.get('reason', '')}".rstrip())
    if not all(info["ready"] and info["ensemble_ready"] for info in infos):
        sys.exit(1)


@click.command()
@connection_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models(
    connection: ConnectionArgs,
    as_json: bool,
) -> None:
    """List the server's models with version and state (the first --url)."""
    from eanno_client.connection import ServerConnectionError
    from eanno_client.readiness import explain_error

    config = connection.configs(timeout_cap=30.0)[0]
    with open_connection(config) as conn:
        try:
            listed = conn.models()
        except ServerConnectionError as e:
            raise explain_error(config.url, e, config.tls) from e.__cause__
    if as_json:
        click.echo(json.dumps(listed, indent=2))
        return
    for m in listed:
        click.echo(f"{m['name']}\tv{m['version'] or '-'}\t{m['state']}\t{m.get('reason', '')}".rstrip())
