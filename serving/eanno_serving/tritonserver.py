"""The wheel's tritonserver: finding it, the Python its models run in, and the backend folder it loads."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from eanno_contracts.errors import EannoError, MissingDependency


class ServerError(EannoError, RuntimeError):
    """The local server could not be started, found or stopped; the message says why."""


class TritonNotInstalled(MissingDependency, ServerError):
    """The tritonserver binary's wheel (nvidia-pytriton) is not installed here (exit code 5)."""


def triton_install() -> Path:
    """The wheel's tritonserver folder (pytriton/tritonserver), or ServerError saying what to install."""
    spec = find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise TritonNotInstalled("nvidia-pytriton is not installed: pip install nvidia-pytriton==0.7.0")
    root = Path(next(iter(spec.submodule_search_locations))) / "tritonserver"
    if not (root / "bin" / "tritonserver").is_file():
        raise ServerError(f"tritonserver binary not found under {root}")
    return root


@dataclass(frozen=True)
class ModelPython:
    """The Python the Python-backend models run in: a venv's interpreter, its X.Y and its libpython's folder."""

    executable: str
    version: str
    libdir: str

    @classmethod
    def of(cls, executable: str | os.PathLike[str] | None = None) -> ModelPython:
        """This process's Python (None), or another interpreter asked for its version and LIBDIR."""
        if executable is None:
            return cls(sys.executable, f"{sys.version_info.major}.{sys.version_info.minor}", "")
        code = (
            "import sys, sysconfig; print('%d.%d' % sys.version_info[:2]); "
            "print(sysconfig.get_config_var('LIBDIR') or '')"
        )
        try:
            out = subprocess.run(
                [str(executable), "-c", code], capture_output=True, text=True, check=True, timeout=60
            ).stdout.split("\n")
        except (OSError, subprocess.SubprocessError) as e:
            raise ServerError(f"cannot run the models' Python {executable}: {e}") from e
        return cls(str(executable), out[0].strip(), out[1].strip())


def prepare_backends(triton: Path, run_dir: Path, version: str | None = None) -> Path:
    """A backend directory whose python/ holds the stub built for this (or `version`'s) Python."""
    version = version or f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = triton / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise ServerError(f"the wheel has no Python backend stub for Python {version} ({stub})")
    backends = run_dir / "backends"
    python = backends / "python"
    python.mkdir(parents=True, exist_ok=True)
    for item in (triton / "backends" / "python").iterdir():
        if item.is_file() and item.name != stub.name:
            shutil.copy2(item, python / item.name)
    # Copied beside and renamed over: a stub left running by a server that died hard keeps the old file
    # busy, and writing into a running executable fails ("Text file busy"); a rename does not.
    tmp = python / f".{stub.name}.{os.getpid()}"
    shutil.copy2(stub, tmp)
    os.replace(tmp, python / stub.name)
    return backends
