"""The command lines' error layer: domain errors exit with their code and message, anything else keeps its traceback."""

from __future__ import annotations

import click
from click.testing import CliRunner
from eanno_contracts.cli import ErrorCommand, ErrorGroup
from eanno_contracts.errors import EannoError, ExitCode, MissingDependency


class Unreachable(EannoError):
    exit_code = ExitCode.UNREACHABLE


@click.group(cls=ErrorGroup)
def main() -> None:
    """A command line with the layer."""


@main.command()
@click.argument("what")
def fail(what: str) -> None:
    """Raise what the argument names."""
    errors = {
        "input": EannoError("scan.nii.gz: not a NIfTI file"),
        "missing": MissingDependency("needs pydicom"),
        "server": Unreachable("localhost:8001: connection refused"),
        "bug": ValueError("a bug"),
    }
    raise errors[what]


@main.group()
def nested() -> None:
    """A subgroup (plain click): the layer above it still applies."""


@nested.command()
def deep() -> None:
    """Raise a domain error two levels down."""
    raise EannoError("deep.json: not JSON")


def test_domain_errors_exit_with_their_code_and_message_only() -> None:
    runner = CliRunner()
    for what, code, message in [
        ("input", 1, "scan.nii.gz: not a NIfTI file"),
        ("missing", 5, "needs pydicom"),
        ("server", 3, "localhost:8001: connection refused"),
    ]:
        result = runner.invoke(main, ["fail", what])
        assert result.exit_code == code, (what, result.output)
        assert f"Error: {message}" in result.output and "Traceback" not in result.output
    result = runner.invoke(main, ["nested", "deep"])
    assert result.exit_code == 1 and "Error: deep.json: not JSON" in result.output


def test_anything_else_keeps_its_traceback() -> None:
    result = CliRunner().invoke(main, ["fail", "bug"])
    assert isinstance(result.exception, ValueError) and result.exit_code == 1
    assert "Error:" not in result.output


def test_usage_errors_stay_click_s_exit_2() -> None:
    result = CliRunner().invoke(main, ["fail"])
    assert result.exit_code == ExitCode.USAGE == 2 and "Missing argument" in result.output


def test_single_command_has_the_layer_too() -> None:
    @click.command(cls=ErrorCommand)
    def one() -> None:
        raise MissingDependency("needs TensorRT")

    result = CliRunner().invoke(one, [])
    assert result.exit_code == 5 and "Error: needs TensorRT" in result.output
