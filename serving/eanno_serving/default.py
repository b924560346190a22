"""The default repository of `eanno-server start`: the python-onnxruntime flavor of the shipped model.

The ONNX file is generated, not shipped: it is derived from the shipped checkpoint (a second 10-20 MB
binary in git would drift from it), and exporting takes seconds. The serving package may not import
the training or export code (tests/test_layout.py), so the repository is written by running
`eanno-export repository` in a subprocess, once per run folder; export skips the work when the
repository already records the same checkpoint.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from eanno_serving.local import ServerError


def default_repository(run_dir: Path, checkpoint: Path | None = None) -> Path:
    """run_dir/repository, written from the checkpoint (None: the shipped one) by eanno-export when absent or stale."""
    return export_repository(run_dir / "repository", checkpoint, "--reuse")


def export_repository(out: Path, checkpoint: Path | None = None, *options: str) -> Path:
    """`eanno-export repository --flavor python-onnxruntime --out OUT [OPTIONS]` in a subprocess (serving may
    not import export); ServerError with its output when it fails."""
    cmd = [sys.executable, "-m", "eanno_export.cli", "repository", "--flavor", "python-onnxruntime"]
    cmd += ["--out", str(out), *options, *(["--checkpoint", str(checkpoint)] if checkpoint else [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ServerError(
            f"could not write the default repository to {out} ({' '.join(cmd)}):\n"
            f"{(proc.stderr or proc.stdout).strip()[-2000:]}\n"
            "install eanno-export (pip install ./export) or pass --repository DIR"
        )
    return out
