"""A local Triton server on the nvidia-pytriton wheel's tritonserver binary (shared/ENVIRONMENT.md).

State (pid, ports, log, repository) lives in a run folder, so `eanno-server stop` in another process finds
the server `start` left running. Every Python-backend shared-memory region gets a per-server prefix, so
stopping cleans exactly this server's /dev/shm regions and nobody else's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

# Re-exported: callers (the command line, tests, benchmarks, scripts) import these from here.
from eanno_serving.access import ADMIN_HEADER, GRPC_HEADER_PREFIX, SITE_HEADER, restricted_args
from eanno_serving.processes import alive, failure_lines, free_ports, log_tail, orphan_stubs, port_free
from eanno_serving.tritonserver import (
    ModelPython,
    ServerError,
    TritonNotInstalled,
    prepare_backends,
    triton_install,
)

__all__ = [
    "ADMIN_HEADER",
    "GRPC_HEADER_PREFIX",
    "SHM_DIR",
    "SITE_HEADER",
    "LocalServer",
    "PortInUseError",
    "ServerError",
    "TritonNotInstalled",
    "default_run_dir",
    "free_ports",
    "log_tail",
    "orphan_stubs",
    "restricted_args",
]

log = logging.getLogger(__name__)
SHM_DIR = Path("/dev/shm")
SHM_PREFIX = "triton_python_backend_shm_region_"
STATE_FILE = "server.json"


class PortInUseError(ServerError):
    """A requested port is already bound on the host."""


@dataclass(frozen=True)
class ServerState:
    """What the run folder records about a started server."""

    pid: int
    host: str
    grpc_port: int
    http_port: int
    metrics_port: int
    repository: str
    log: str
    shm_prefix: str
    started: float


def default_run_dir() -> Path:
    """Where the server's state, log and backend folder live ($EANNO_RUN_DIR, else ~/.cache/eanno/server)."""
    return Path(os.environ.get("EANNO_RUN_DIR", Path.home() / ".cache" / "eanno" / "server"))


def check_repository(repository: Path) -> None:
    """A clear error before starting when the repository is absent or holds no model config."""
    if not repository.is_dir():
        raise ServerError(f"model repository not found: {repository}")
    if not any(repository.glob("*/config.pbtxt")):
        raise ServerError(f"model repository {repository} holds no <model>/config.pbtxt")


class LocalServer:
    """A tritonserver process on 127.0.0.1 serving `repository`; a context manager (start on enter, stop on exit)."""

    def __init__(
        self,
        repository: str | os.PathLike[str],
        *,
        grpc_port: int = 8001,
        http_port: int = 8000,
        metrics_port: int = 8002,
        host: str = "127.0.0.1",
        run_dir: str | os.PathLike[str] | None = None,
        startup_timeout: float = 180.0,
        shm_byte_size: int = 64 * 2**20,
        extra_args: Sequence[str] = (),
        python: str | os.PathLike[str] | None = None,
    ) -> None:
        self.repository = Path(repository).resolve()
        self.host, self.ports = host, {"grpc": grpc_port, "http": http_port, "metrics": metrics_port}
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir()
        self.startup_timeout, self.shm_byte_size = startup_timeout, shm_byte_size
        self.extra_args = list(
            extra_args
        )  # more tritonserver options, e.g. --grpc-use-ssl=true and its certs
        # The models' interpreter: this one, or e.g. a CPython 3.10 venv as in the NGC 24.10 image (its
        # python is then first on PATH, so the stub's embedded Python finds that venv's packages).
        self.python = python
        self.state: ServerState | None = None

    @property
    def urls(self) -> dict[str, str]:
        """grpc (host:port, as tritonclient wants it), http and metrics URLs."""
        return {
            "grpc": f"{self.host}:{self.ports['grpc']}",
            "http": f"http://{self.host}:{self.ports['http']}",
            "metrics": f"http://{self.host}:{self.ports['metrics']}/metrics",
        }

    @classmethod
    def attach(cls, run_dir: str | os.PathLike[str] | None = None) -> LocalServer:
        """The server recorded in run_dir (started by another process), or ServerError when none is."""
        run = Path(run_dir) if run_dir is not None else default_run_dir()
        try:
            state = ServerState(**json.loads((run / STATE_FILE).read_text()))
        except (OSError, ValueError, TypeError) as e:
            raise ServerError(f"no server recorded in {run} (start one with eanno-server start)") from e
        server = cls(
            state.repository,
            grpc_port=state.grpc_port,
            http_port=state.http_port,
            metrics_port=state.metrics_port,
            host=state.host,
            run_dir=run,
        )
        server.state = state
        return server

    def command(self, backends: Path, shm_prefix: str) -> list[str]:
        """The tritonserver command line."""
        p = self.ports
        return [
            str(triton_install() / "bin" / "tritonserver"),
            f"--model-repository={self.repository}",
            f"--backend-directory={backends}",
            f"--http-address={self.host}",
            f"--http-port={p['http']}",
            f"--grpc-address={self.host}",
            f"--grpc-port={p['grpc']}",
            f"--metrics-address={self.host}",
            f"--metrics-port={p['metrics']}",
            "--exit-on-error=true",
            "--strict-readiness=true",
            f"--backend-config=python,shm-region-prefix-name={shm_prefix}",
            f"--backend-config=python,shm-default-byte-size={self.shm_byte_size}",
            f"--backend-config=python,shm-growth-byte-size={self.shm_byte_size}",
            "--log-verbose=0",
            *self.extra_args,
        ]

    def environment(self, triton: Path, python: ModelPython | None = None) -> dict[str, str]:
        """The server's environment: the models' venv bin first on PATH (numpy < 2 there), wheel libs, libpython."""
        python = python or ModelPython.of(None)
        env = dict(os.environ)
        libs = triton.parent.parent / "nvidia_pytriton.libs"
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (str(libs), python.libdir, env.get("LD_LIBRARY_PATH", "")) if p
        )
        env["PATH"] = os.pathsep.join((str(Path(python.executable).parent), env.get("PATH", "")))
        return env

    def status(self) -> dict[str, object]:
        """Whether the recorded server runs and is ready, with its ports and log."""
        if self.state is None:
            return {"running": False}
        return {
            "running": alive(self.state.pid),
            "ready": self.ready(),
            **asdict(self.state),
            "urls": self.urls,
        }

    def ready(self) -> bool:
        """Whether /v2/health/ready answers 200 and the metrics endpoint accepts connections."""
        try:
            with urllib.request.urlopen(f"{self.urls['http']}/v2/health/ready", timeout=2) as r:
                if r.status != 200:
                    return False
            # tritonserver opens its metrics port after HTTP and gRPC: a loaded machine showed a
            # "ready" server refusing /metrics, which the load test and the client's metrics read.
            with socket.create_connection((self.host, self.ports["metrics"]), timeout=2):
                return True
        except (urllib.error.URLError, OSError):
            return False

    def start(self) -> LocalServer:
        """Start the server and wait until it is ready; clear errors for busy ports, bad repositories, early death."""
        try:
            running: ServerState | None = LocalServer.attach(self.run_dir).state
        except ServerError:
            running = None
        if running is not None and alive(running.pid):
            raise ServerError(
                f"a server already runs from {self.run_dir} (pid {running.pid}, gRPC port "
                f"{running.grpc_port}); stop it first (eanno-server stop) or use another --run-dir"
            )
        if running is not None:  # recorded but dead: it died hard; clear what it left before starting anew
            log.warning(
                "the server recorded in %s (pid %d) died without stopping; removing what it left",
                self.run_dir,
                running.pid,
            )
            self.state = running
            self._forget()
        if 0 in self.ports.values():  # 0: any free port, as the OS hands them out (tests, benchmarks)
            picked = iter(free_ports(list(self.ports.values()).count(0)))
            self.ports = {name: port or next(picked) for name, port in self.ports.items()}
        for name, port in self.ports.items():
            if not port_free(self.host, port):
                raise PortInUseError(
                    f"{name} port {port} on {self.host} is already in use; choose another with --{name}-port"
                )
        check_repository(self.repository)
        triton = triton_install()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        python = ModelPython.of(self.python)
        backends = prepare_backends(triton, self.run_dir, python.version)
        shm_prefix = f"{SHM_PREFIX}eanno{secrets.token_hex(4)}_"
        log_path = self.run_dir / "server.log"
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                self.command(backends, shm_prefix),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environment(triton, python),
                start_new_session=True,
            )
        self.state = ServerState(
            proc.pid,
            self.host,
            self.ports["grpc"],
            self.ports["http"],
            self.ports["metrics"],
            str(self.repository),
            str(log_path),
            shm_prefix,
            time.time(),
        )
        (self.run_dir / STATE_FILE).write_text(json.dumps(asdict(self.state), indent=1))
        deadline = time.monotonic() + self.startup_timeout
        while not self.ready():
            if proc.poll() is not None:
                self._forget()
                raise ServerError(
                    f"tritonserver exited with code {proc.returncode} while starting; "
                    f"errors and last lines of {log_path}:\n{failure_lines(log_path)}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(
                    f"tritonserver not ready after {self.startup_timeout:.0f} s; "
                    f"last lines of {log_path}:\n{log_tail(log_path)}"
                )
            time.sleep(0.25)
        self._proc = proc
        log.info("tritonserver ready (pid %d) at %s", proc.pid, self.urls)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after `timeout`) and remove its shared-memory regions."""
        if self.state is None:
            return
        pid = self.state.pid
        if alive(pid):
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + timeout
            while self._running(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if self._running(pid):
                log.warning("tritonserver %d ignored SIGTERM for %.0f s; killing it", pid, timeout)
                os.killpg(pid, signal.SIGKILL)
                while self._running(pid):
                    time.sleep(0.1)
        self._forget()

    def _running(self, pid: int) -> bool:
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.pid == pid:
            return proc.poll() is None  # reaps our own child, so it does not linger as a zombie
        return alive(pid)

    def _forget(self) -> None:
        """Remove what the stopped (or dead) server leaves: orphan processes of its group, its shm, its state."""
        if self.state is not None:
            for pid in orphan_stubs(self.state.shm_prefix):
                log.warning("killing Python-backend stub %d left by server %d", pid, self.state.pid)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)  # stubs ignore SIGTERM
            for region in SHM_DIR.glob(f"{self.state.shm_prefix}*"):
                region.unlink(missing_ok=True)
        (self.run_dir / STATE_FILE).unlink(missing_ok=True)
        self.state = None

    def leftover_shm(self, prefix: str | None = None) -> list[Path]:
        """Shared-memory regions of this server (or of `prefix`) still in /dev/shm."""
        p = prefix or (self.state.shm_prefix if self.state else None)
        return sorted(SHM_DIR.glob(f"{p}*")) if p else []

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
