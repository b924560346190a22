"""The local server the client benchmarks start: `eanno-server` on free loopback ports, as a subprocess.

A subprocess, not eanno_serving.local: client/ imports nothing else of ours (tests/test_layout.py).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path


def free_ports(n: int = 3) -> list[int]:
    """n distinct ports free on 127.0.0.1 right now."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


@contextmanager
def local_server(repository: Path | None, run_dir: Path, hint: str = "") -> Iterator[tuple[str, str]]:
    """`eanno-server start` on free ports, stopped on exit; yields (gRPC URL, metrics URL)."""
    grpc, http, metrics = free_ports()
    exe = str(Path(sys.executable).parent / "eanno-server")
    cmd = [
        exe,
        "start",
        "--grpc-port",
        str(grpc),
        "--http-port",
        str(http),
        "--metrics-port",
        str(metrics),
        "--run-dir",
        str(run_dir),
        "--unrestricted",  # perf_analyzer reads the statistics protocol
    ] + (["--repository", str(repository)] if repository else [])
    if subprocess.run(cmd, check=False).returncode != 0:
        raise SystemExit(
            f"eanno-server start failed (above); without the shipped checkpoint pass --repository DIR{hint}"
        )
    try:
        yield f"127.0.0.1:{grpc}", f"http://127.0.0.1:{metrics}/metrics"
    finally:
        subprocess.run([exe, "stop", "--run-dir", str(run_dir)], check=False)
