"""Every `pip install` of docker/Dockerfile resolves for the image's Python (CPython 3.10, manylinux x86_64).

No Docker engine here, so pip's resolver is asked directly (shared/ENVIRONMENT.md): `--dry-run` with
`--python-version 3.10 --only-binary=:all:` and the platforms of glibc 2.35 (Ubuntu 22.04, the NGC 24.10
images; python:3.10-slim is newer). Needs the network to PyPI (CI has it).

Not checked: what comes from the PyTorch index (torch 2.13.0+cpu for cp310, stage `export`): a stand-in
torch wheel with no dependencies takes its place, because PyPI's torch drags in gigabytes of CUDA wheels.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shlex
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "Dockerfile"
CONSTRAINTS = REPO / "requirements" / "constraints.txt"
TARGET_PYTHON = {"python_version": "3.10", "python_full_version": "3.10.12"}
# Ubuntu 22.04 (glibc 2.35): every manylinux tag up to 2_35 installs there.
PLATFORMS = [f"manylinux_2_{k}_x86_64" for k in range(35, 16, -1)] + ["manylinux2014_x86_64"]
PYTORCH_INDEX = "download.pytorch.org"
TORCH_PIN = "2.13.0"


@dataclass(frozen=True)
class PipInstall:
    """One `pip install` found in the Dockerfile or in a script it runs."""

    where: str  # stage name, and the script when inside one
    args: tuple[str, ...]


def _logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined and comments dropped."""
    out, cur = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") and not cur:
            continue
        cur += line.rstrip()
        if cur.endswith("\\"):
            cur = cur[:-1] + " "
            continue
        out.append(cur)
        cur = ""
    return out + ([cur] if cur else [])


def _installs_in(command: str, where: str) -> list[PipInstall]:
    """pip installs in one shell command line; scripts of docker/ that it runs are read too."""
    found = []
    lexer = shlex.shlex(command.replace("$SRC/", "./"), posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    parts: list[list[str]] = [[]]
    for token in lexer:
        if token in ("&&", ";", "||", "|"):
            parts.append([])
        else:
            parts[-1].append(token)
    for tokens in parts:
        while tokens and re.match(r"^[A-Z_]+=", tokens[0]):  # VAR=value prefixes
            tokens.pop(0)
        for i in range(len(tokens) - 1):
            if tokens[i] in ("pip", "pip3") or tokens[i : i + 2] == ["-m", "pip"]:
                j = i + 1 if tokens[i] in ("pip", "pip3") else i + 2
                if j < len(tokens) and tokens[j] == "install":
                    found.append(PipInstall(where, tuple(tokens[j + 1 :])))
                break
        if tokens and tokens[0].startswith("docker/") and tokens[0].endswith(".sh"):
            script = REPO / tokens[0]
            for line in _logical_lines(script.read_text()):
                found += _installs_in(line, f"{where} ({tokens[0]})")
    return found


def dockerfile_installs(path: Path = DOCKERFILE) -> list[PipInstall]:
    """Every pip install of the Dockerfile's RUN instructions, labelled by stage."""
    stage, found = "?", []
    for line in _logical_lines(path.read_text()):
        words = line.split()
        if words and words[0].upper() == "FROM":
            stage = words[-1] if len(words) >= 4 and words[-2].upper() == "AS" else words[1]
        elif words and words[0].upper() == "RUN":
            found += _installs_in(line.split(None, 1)[1], stage)
    return found


def constraints_for(env: dict[str, str], path: Path = CONSTRAINTS) -> str:
    """The constraints file as pip on the target Python reads it: markers evaluated there, then dropped."""
    lines = []
    for raw in path.read_text().splitlines():
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate(env):
            req.marker = None
            lines.append(str(req))
    return "\n".join(lines) + "\n"


def stand_in_torch(folder: Path) -> Path:
    """A dependency-free torch wheel: the PyTorch index is not PyPI and is not checked (module docstring)."""
    dist = f"torch-{TORCH_PIN}.dist-info"
    files = {
        "torch/__init__.py": b"",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: torch\nVersion: {TORCH_PIN}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: eanno-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }

    def digest(data: bytes) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

    record = "".join(f"{k},sha256={digest(v)},{len(v)}\n" for k, v in files.items()) + f"{dist}/RECORD,,\n"
    wheel = folder / f"torch-{TORCH_PIN}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr(f"{dist}/RECORD", record)
    return wheel


def dry_run_args(install: PipInstall, constraints: Path, folder: Path) -> tuple[list[str], list[str]]:
    """The pip command that resolves `install` for the target, and what it leaves unchecked."""
    args, skipped, extra = [], [], []
    it = iter(install.args)
    for a in it:
        if a == "--no-cache-dir":
            continue
        if a in ("-c", "--constraint"):
            given = Path(next(it))
            assert (REPO / given).resolve() == CONSTRAINTS, (
                f"{install.where}: unexpected constraints file {given}"
            )
            args += ["-c", str(constraints)]
        elif a == "--extra-index-url":
            url = next(it)
            assert PYTORCH_INDEX in url, f"{install.where}: an index this test does not know: {url}"
            skipped.append(f"torch {TORCH_PIN} from {url} (a stand-in wheel took its place)")
            extra.append(f"torch @ {stand_in_torch(folder).as_uri()}")
        else:
            args.append(a)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--ignore-installed",
        "--disable-pip-version-check",
        "--target",
        str(folder / "target"),
        "--python-version",
        TARGET_PYTHON["python_version"],
        "--only-binary=:all:",
        *[f"--platform={p}" for p in PLATFORMS],
        *args,
        *extra,
    ]
    return cmd, skipped


INSTALLS = dockerfile_installs()


def test_the_parser_sees_every_stage_that_installs() -> None:
    stages = {i.where for i in INSTALLS}
    assert {"export", "plan-builder", "server (docker/install-server-python.sh)"} <= stages, stages
    assert all(any(a.startswith("./") or not a.startswith("-") for a in i.args) for i in INSTALLS)


def test_constraints_differ_for_the_image_where_wheels_do() -> None:
    """The markers pick the 3.10 pins there and the newest here, from the one file."""
    image = constraints_for(TARGET_PYTHON)
    here = constraints_for({"python_version": "3.11", "python_full_version": "3.11.7"})
    assert "scipy==1.15.3" in image and "scipy==1.15.3" not in here
    assert len(image.splitlines()) == len(here.splitlines())  # every pin exists for both, once


@pytest.mark.slow
@pytest.mark.parametrize("install", INSTALLS, ids=[f"{i.where}:{n}" for n, i in enumerate(INSTALLS)])
def test_pip_install_resolves_for_cpython_310(install: PipInstall, tmp_path: Path) -> None:
    constraints = tmp_path / "constraints-py310.txt"
    constraints.write_text(constraints_for(TARGET_PYTHON))
    cmd, skipped = dry_run_args(install, constraints, tmp_path)
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("WARNING: Location")]
    assert proc.returncode == 0, (
        f"{install.where}: pip install {' '.join(install.args)} does not resolve for "
        f"CPython 3.10:\n" + "\n".join(errors[-25:])
    )
    would = [line for line in proc.stdout.splitlines() if line.startswith("Would install")]
    assert would, proc.stdout[-2000:]
    print(f"{install.where}: {would[0]}" + (f"\nnot checked: {'; '.join(skipped)}" if skipped else ""))
