"""CPython 3.10 environments like the image's (nvcr.io tritonserver 24.10 runs 3.10), and client venvs on
other Pythons (3.13: numpy 2), built once and cached.

The server env is made by docker/install-server-python.sh, the very script the Dockerfile runs; the client
env by a plain `pip install ./client`, as a workstation on Ubuntu 22.04 would. Each is rebuilt only when
what it is made from changed (a hash of those files is stamped into the venv), so after the first build a
test session pays only the check. Both need PyPI for the first build.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STAMP = ".eanno-source"
SOURCE_SUFFIXES = {".py", ".toml", ".yaml", ".yml", ".txt", ".sh", ".cfg", ".json", ".pt"}


def find_python(version: str = "3.10") -> Path | None:
    """A CPython X.Y interpreter: $EANNO_PYTHON<XY>, pyenv's newest X.Y.z, or pythonX.Y on PATH."""
    given = os.environ.get(f"EANNO_PYTHON{version.replace('.', '')}")
    if given:
        return Path(given)
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = sorted(
        root.glob(f"versions/{version}.*/bin/python{version}"),
        key=lambda p: tuple(int(x) for x in p.parts[-3].split(".") if x.isdigit()),
    )
    if candidates:
        return candidates[-1]
    found = shutil.which(
        f"python{version}"
    )  # not a pyenv shim: it fails where X.Y is not the selected version
    return Path(found) if found and "shims" not in Path(found).parts else None


def find_python310() -> Path | None:
    """A CPython 3.10 interpreter (the image's)."""
    return find_python("3.10")


def require_python310(what: str) -> Path:
    """A CPython 3.10 interpreter, or a pytest skip saying that `what` cannot run without one."""
    import pytest

    found = find_python310()
    if found is None or not found.is_file():
        pytest.skip(f"no CPython 3.10 here (set EANNO_PYTHON310, or `pyenv install 3.10`): {what}")
    return found


def source_hash(paths: list[Path]) -> str:
    """SHA-256 over the files an environment is built from (names and contents; caches skipped)."""
    h = hashlib.sha256()
    for root in paths:
        files = (
            [root]
            if root.is_file()
            else sorted(
                p
                for p in root.rglob("*")
                if p.is_file()
                and p.suffix in SOURCE_SUFFIXES
                and "__pycache__" not in p.parts
                and not any(part.endswith(".egg-info") for part in p.parts)
            )
        )
        for f in files:
            h.update(str(f.relative_to(REPO)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def ensure_venv(venv: Path, python310: Path, install: list[str], sources: list[Path]) -> tuple[Path, float]:
    """venv/bin/python with `install` run in it (args after the venv's python); (python, seconds spent)."""
    start = time.monotonic()
    key = source_hash(sources)
    python = venv / "bin" / "python"
    stamp = venv / STAMP
    if python.is_file() and stamp.is_file() and stamp.read_text() == key:
        return python, time.monotonic() - start
    if not python.is_file():
        subprocess.run([str(python310), "-m", "venv", str(venv)], check=True)
    stamp.unlink(missing_ok=True)
    cmd = [a.replace("{python}", str(python)) for a in install]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        errors = [
            line
            for line in (proc.stdout + proc.stderr).splitlines()
            if not line.startswith("WARNING: Location")
        ]
        raise RuntimeError(f"building {venv} failed ({' '.join(cmd)}):\n" + "\n".join(errors[-30:]))
    stamp.write_text(key)
    return python, time.monotonic() - start


def server_env(python310: Path) -> tuple[Path, float]:
    """The image's server-side Python, installed by docker/install-server-python.sh."""
    venv = Path(os.environ.get("EANNO_PY310_SERVER_VENV", REPO / ".venv-py310"))
    sources = [
        REPO / "requirements" / "constraints.txt",
        REPO / "docker" / "install-server-python.sh",
        *(REPO / d for d in ("contracts", "postproc", "serving", "export")),
    ]
    return ensure_venv(venv, python310, ["bash", "docker/install-server-python.sh", "{python}", "."], sources)


def client_env(python: Path, version: str = "3.10") -> tuple[Path, float]:
    """The workstation client on that Python: `pip install ./client`, unpinned, as its README says."""
    tag = version.replace(".", "")
    venv = Path(os.environ.get(f"EANNO_PY{tag}_CLIENT_VENV", REPO / f".venv-py{tag}-client"))
    return ensure_venv(
        venv, python, ["{python}", "-m", "pip", "install", "./client"], [REPO / "client", REPO / "contracts"]
    )


def client_test_env(python: Path, version: str = "3.10") -> tuple[Path, float]:
    """What tests/client needs on that Python: the client and its test imports, editable (so the tests run this
    tree's code with no rebuild), pinned by requirements/constraints.txt (its markers give 3.10 its own pins).

    eanno_serving comes without the Triton wheel, and tritonclient with HTTP: the server tests' modules import
    them when collected, though they are not run in this venv. Training comes without its dependencies
    (torch): the client tests use only its torch-free phantom generator.
    """
    tag = version.replace(".", "")
    venv = Path(os.environ.get(f"EANNO_PY{tag}_TESTS_VENV", REPO / f".venv-py{tag}-tests"))
    script = (
        'EANNO_CONTRACTS_BY_NAME=1 "$0" -m pip install -q --disable-pip-version-check '
        '-c requirements/constraints.txt pytest pytest-timeout hypothesis onnx "tritonclient[grpc,http]" '
        '-e ./contracts -e ./postproc -e "./serving[all]" -e "./client[all]" '
        '&& "$0" -m pip install -q --disable-pip-version-check --no-deps -e ./training'
    )
    packages = ("contracts", "postproc", "serving", "client", "training")
    sources = [
        REPO / "requirements" / "constraints.txt",
        Path(__file__),  # this file holds the install command
        *(f for d in packages for f in (REPO / d / "pyproject.toml", REPO / d / "setup.py") if f.is_file()),
    ]
    return ensure_venv(venv, python, ["bash", "-c", script, "{python}"], sources)
