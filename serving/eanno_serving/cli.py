"""`eanno-server`: start, stop, inspect and read the logs of the local Triton server."""

from __future__ import annotations

import json
import logging
import secrets
import sys
from pathlib import Path

import click
from eanno_contracts.cli import ErrorGroup, add_version

from eanno_serving.local import LocalServer, ServerError, default_run_dir, log_tail, restricted_args

RUN_DIR = click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="EANNO_RUN_DIR",
    default=None,
    help="Folder for the server's state, log and backends [~/.cache/eanno/server].",
)


@click.group(cls=ErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Run the EfficientAnno Triton server on this machine (127.0.0.1, CPU, the wheel's tritonserver).

    \b
    eanno-server start                 # the shipped model, ports 8000 (HTTP) 8001 (gRPC) 8002 (metrics)
    eanno-server status --json
    eanno-server logs -n 50
    eanno-server stop
    """
    logging.basicConfig(level=logging.INFO, format="%(message)s")


@main.command()
@click.option(
    "--grpc-port",
    type=click.IntRange(0, 65535),
    default=8001,
    show_default=True,
    envvar="EANNO_GRPC_PORT",
    help="0: any free port (each of the three; `status --json` says which).",
)
@click.option(
    "--http-port", type=click.IntRange(0, 65535), default=8000, show_default=True, envvar="EANNO_HTTP_PORT"
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=8002,
    show_default=True,
    envvar="EANNO_METRICS_PORT",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; anything but 127.0.0.1 exposes the server to the network.",
)
@click.option(
    "--repository",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A Triton model repository [the python-onnxruntime repository of the shipped model, "
    "written into the run folder at first start].",
)
@click.option(
    "--python",
    "python",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Run the Python models in this interpreter (a venv's python with numpy < 2 and eanno-serving, "
    "e.g. CPython 3.10 as in the 24.10 image) [this one].",
)
@click.option(
    "--admin-key",
    envvar="EANNO_ADMIN_KEY",
    default=None,
    help="Key for the admin protocols (model repository, shared memory, statistics, trace, logging): "
    "gRPC clients send it as 'triton-grpc-protocol-eanno-admin-key: KEY' [random: nobody].",
)
@click.option(
    "--site-token",
    envvar="EANNO_SITE_TOKEN",
    default=None,
    help="Also restrict inference to clients sending 'triton-grpc-protocol-eanno-site-token: TOKEN' "
    "(eanno-client --header).",
)
@click.option("--unrestricted", is_flag=True, help="Leave every protocol open (development only).")
@RUN_DIR
def start(
    grpc_port: int,
    http_port: int,
    metrics_port: int,
    host: str,
    repository: Path | None,
    python: Path | None,
    admin_key: str | None,
    site_token: str | None,
    unrestricted: bool,
    run_dir: Path | None,
) -> None:
    """Start the server in the background and wait until it is ready.

    The admin protocols answer only to requests carrying the admin key (by default a random one, so to
    nobody); inference, health, metadata and model configs stay open unless --site-token is given.
    """
    run = run_dir or default_run_dir()
    restrict = [] if unrestricted else restricted_args(admin_key or secrets.token_hex(16), site_token)
    if repository is None:
        from eanno_serving.default import default_repository

        repository = default_repository(run)
    server = LocalServer(
        repository,
        grpc_port=grpc_port,
        http_port=http_port,
        metrics_port=metrics_port,
        host=host,
        run_dir=run,
        python=python,
        extra_args=restrict,
    ).start()
    click.echo(
        f"ready: gRPC {server.urls['grpc']}  HTTP {server.urls['http']}  metrics {server.urls['metrics']}"
    )
    click.echo(f"repository {server.repository}; log {server.state.log if server.state else '?'}")
    click.echo(
        "admin protocols: open (--unrestricted)"
        if unrestricted
        else f"admin protocols: need the {'given' if admin_key else 'random'} admin key; inference: "
        f"{'needs the site token' if site_token else 'open'}"
    )


@main.command()
@RUN_DIR
def stop(run_dir: Path | None) -> None:
    """Stop the server and remove its shared-memory regions."""
    LocalServer.attach(run_dir).stop()
    click.echo("stopped")


@main.command()
@RUN_DIR
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(run_dir: Path | None, as_json: bool) -> None:
    """Say whether the server runs and is ready (exit 1 when it is not running)."""
    try:
        info = LocalServer.attach(run_dir).status()
    except ServerError:
        info = {"running": False}
    if as_json:
        click.echo(json.dumps(info, indent=1))
    elif info["running"]:
        click.echo(
            f"running (pid {info['pid']}), ready: {info['ready']}; gRPC {info['urls']['grpc']}; "  # type: ignore[index]
            f"log {info['log']}"
        )
    else:
        click.echo("not running")
    sys.exit(0 if info["running"] else 1)


@main.command()
@RUN_DIR
@click.option("-n", "--lines", type=int, default=40, show_default=True, help="How many last lines to print.")
def logs(run_dir: Path | None, lines: int) -> None:
    """Print the last lines of the server's log."""
    path = (run_dir or default_run_dir()) / "server.log"
    if not path.is_file():
        raise click.ClickException(f"no server log at {path}")
    click.echo(log_tail(path, lines))


add_version(main, "eanno-serving")  # --version on the command and every subcommand
