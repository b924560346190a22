"""This host's side of a local server: free ports, its log's telling lines, its processes (by /proc)."""

from __future__ import annotations

import os
import re
import socket
from contextlib import ExitStack
from pathlib import Path

# Errors a CPU-only host always logs; they explain nothing about a failed start.
GPU_NOISE = ("CudaDriverHelper", "NVML", "cuda", "CUDA")


def port_free(host: str, port: int) -> bool:
    """Whether `port` can be bound on `host` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As tritonserver itself binds: connections of a crashed server left in TIME_WAIT do not make the
        # port busy (without this a restart on the same ports fails for a minute); a listener still does.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(n: int = 3) -> list[int]:
    """n distinct ports free on 127.0.0.1 right now (for a server's gRPC, HTTP and metrics ports)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def log_tail(path: str | Path, lines: int = 20) -> str:
    """The last lines of a log file ('' when absent)."""
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def failure_lines(path: str | Path, tail: int = 8, most: int = 30) -> str:
    """Triton's error lines (E<mmdd> ...) and the last lines of the log: what a failed start needs."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    errors = [
        line
        for line in lines[:-tail]
        if re.search(r"^E\d{4} |ERROR|^error", line) and not any(noise in line for noise in GPU_NOISE)
    ]
    return "\n".join((errors[-(most - tail) :] if errors else []) + lines[-tail:])


def orphan_stubs(shm_prefix: str) -> list[int]:
    """Pids of Python-backend stubs of the server whose shared-memory prefix is `shm_prefix` (their command
    line names their region), so only that server's stubs are ever matched."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if b"triton_python_backend_stub" in cmdline and shm_prefix.encode() in cmdline:
            found.append(int(proc.name))
    return found


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie does not; our own exited child is reaped here)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child: another process (eanno-server start) launched it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
