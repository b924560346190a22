"""eanno-export's domain errors (eanno_contracts.errors): what the command lines print without a traceback."""

from __future__ import annotations

from eanno_contracts.errors import EannoError, MissingDependency


class ExportError(EannoError):
    """An export that cannot be done: a missing input file, failed ONNX parity, a network TensorRT rejects."""


class TensorRTUnavailable(MissingDependency, RuntimeError):
    """TensorRT cannot be imported on this machine (exit code 5, eanno_contracts.errors.ExitCode)."""
