"""The exit codes of every eanno-* command line and the base class of every domain error (CONTRACTS.md "Exit codes").

A domain error is a problem with what the user gave (a file, a value, a server address) or with this
machine (an optional dependency missing); its message names the file or value and the problem, and a
command line prints it without a traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What an eanno-* command's exit status means; the same in every command line."""

    OK = 0
    BAD_INPUT = (
        1  # a file or value the command cannot use (message, no traceback); a crash also exits 1, with one
    )
    USAGE = 2  # click: unknown option, missing argument, malformed value
    UNREACHABLE = 3  # the server did not answer (address, port, TLS, timeout)
    PARTIAL = 4  # a batch finished, but some of its cases failed (each one logged)
    MISSING_DEPENDENCY = (
        5  # an optional dependency is not installed here (TensorRT, pydicom, matplotlib, ...)
    )
    INTERRUPTED = 130  # SIGINT (Ctrl-C), as shells report it


class EannoError(Exception):
    """Base of every domain error: printed as its message alone, exit status `exit_code`."""

    exit_code: ExitCode = ExitCode.BAD_INPUT


class MissingDependency(EannoError):
    """An optional dependency this command needs is not installed; the message says how to get it."""

    exit_code = ExitCode.MISSING_DEPENDENCY
