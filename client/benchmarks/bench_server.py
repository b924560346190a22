"""The local server the client benchmarks start: `eanno-server` on free loopback ports (port 0), as a subprocess.

A subprocess, not eanno_serving.local: client/ imports nothing else of ours (tests/test_layout.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def local_server(repository: Path | None, run_dir: Path, hint: str = "") -> Iterator[tuple[str, str]]:
    """`eanno-server start` on free ports, stopped on exit; yields (gRPC URL, metrics URL)."""
    exe = str(Path(sys.executable).parent / "eanno-server")
    ports = ["--grpc-port", "0", "--http-port", "0", "--metrics-port", "0"]  # 0: the server picks free ones
    # --unrestricted: perf_analyzer reads the statistics protocol
    cmd = [exe, "start", *ports, "--run-dir", str(run_dir), "--unrestricted"]
    cmd += ["--repository", str(repository)] if repository else []
    if subprocess.run(cmd, check=False).returncode != 0:
        raise SystemExit(
            f"eanno-server start failed (above); without the shipped checkpoint pass --repository DIR{hint}"
        )
    try:
        status = subprocess.run(
            [exe, "status", "--json", "--run-dir", str(run_dir)], capture_output=True, text=True, check=True
        )
        urls = json.loads(status.stdout)["urls"]
        yield urls["grpc"], urls["metrics"]
    finally:
        subprocess.run([exe, "stop", "--run-dir", str(run_dir)], check=False)
