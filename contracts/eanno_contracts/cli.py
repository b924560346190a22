"""The one error layer of the click command lines: domain errors -> their exit code and message, no traceback.

Use `@click.group(cls=ErrorGroup)` (or `@click.command(cls=ErrorCommand)`) on the entry point; the library
code below it raises EannoError subclasses (eanno_contracts.errors) and never click exceptions. Only the
command lines import this module (click is theirs; the rest of eanno_contracts needs numpy only).
"""

from __future__ import annotations

from typing import Any

import click

from .errors import EannoError


class DomainException(click.ClickException):
    """A domain error as click shows it: "Error: <message>" on stderr, the error's own exit code."""

    def __init__(self, error: EannoError) -> None:
        super().__init__(str(error))
        self.exit_code = int(error.exit_code)


class _Catching:
    """Mixin: run the command (and every subcommand below it), turning EannoError into DomainException."""

    def invoke(self, ctx: click.Context) -> Any:
        """click's invoke, with domain errors converted."""
        try:
            return super().invoke(ctx)  # type: ignore[misc]
        except EannoError as e:
            raise DomainException(e) from e


class ErrorGroup(_Catching, click.Group):
    """A click group with the error layer."""


class ErrorCommand(_Catching, click.Command):
    """A single click command with the error layer."""


def add_version(command: click.Command, dist: str) -> click.Command:
    """`--version` (the installed version of distribution `dist`) on a command, its subcommands and theirs."""
    click.version_option(package_name=dist, message="%(prog)s %(version)s")(command)
    for sub in getattr(command, "commands", {}).values():
        add_version(sub, dist)
    return command
