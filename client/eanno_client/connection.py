"""The gRPC connection to the server: message limits, TLS, headers, timeouts, retries on UNAVAILABLE."""

from __future__ import annotations

import functools
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from eanno_contracts.admission import is_busy
from eanno_contracts.answer import AnswerError, box_shape, full_size, unpack
from eanno_contracts.errors import EannoError, ExitCode

from eanno_client.urls import DEFAULT_URL

log = logging.getLogger(__name__)
T = TypeVar("T")
ENSEMBLE = "eanno_annotate"
WINDOW_MODEL = "eanno_window"
# 2 GiB - 1: gRPC's own ceiling. Set explicitly because passing any channel_args to tritonclient drops
# its defaults and leaves gRPC's 4 MiB, far below one CT volume (shared/ENVIRONMENT.md).
MAX_MESSAGE_BYTES = 2**31 - 1
RETRY_STATUSES = ("StatusCode.UNAVAILABLE",)
DEADLINE_STATUS = (
    "StatusCode.DEADLINE_EXCEEDED"  # --timeout passed: never retried (the case would only wait again)
)
# Triton answers a protocol restricted behind a header (--grpc-restricted-protocol) with UNAVAILABLE too;
# waiting does not help there, so it is not retried.
RESTRICTED = "protocol is restricted"
BUSY_MAX_DELAY_S = 30.0  # the longest single wait between busy refusals (the back-off's ceiling)
SERVED_MODELS = (ENSEMBLE, WINDOW_MODEL, "eanno_segmenter", "eanno_postproc")


class ServerConnectionError(EannoError, RuntimeError):
    """The server could not be reached or refused a request; the message says which and why."""

    def __init__(self, message: str, attempts: int | None = None) -> None:
        super().__init__(message)
        # requests sent before giving up (1: not retried); None where no request was sent
        self.attempts = attempts


class ServerUnreachable(ServerConnectionError):
    """No gRPC server of ours answers at the address: refused, no answer, TLS, another port, DNS (exit 3)."""

    exit_code = ExitCode.UNREACHABLE


@dataclass(frozen=True)
class ConnectionConfig:
    """How to reach the server."""

    url: str = DEFAULT_URL
    root_cert: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 600.0  # one request (a whole case), client side
    retries: int = 4
    backoff_s: float = 0.5
    # A "server busy" refusal (over capacity, CONTRACTS.md "Admission") is retried apart from `retries`, with
    # jittered exponential back-off from backoff_s, for at most busy_wait_s of waiting in all.
    busy_wait_s: float = 600.0
    max_message_bytes: int = MAX_MESSAGE_BYTES

    @property
    def tls(self) -> bool:
        """Whether TLS is used (any certificate given)."""
        return any(p is not None for p in (self.root_cert, self.client_cert, self.client_key))


def parse_header(text: str) -> tuple[str, str]:
    """'Name: value' -> (name lower-cased, value); gRPC metadata keys must be lower case."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"header {text!r} is not 'Name: value'")
    return name.strip().lower(), value.strip()


def _read(path: Path | None, what: str) -> str | None:
    """The file's path once it is known to be readable: tritonclient opens the PEM files itself (given
    bytes, it takes them for a file name and fails with 'File name too long')."""
    if path is None:
        return None
    try:
        Path(path).read_bytes()
    except OSError as e:
        raise ServerConnectionError(f"{path}: cannot read the {what} ({e.strerror})") from e
    return str(path)


class Connection:
    """A tritonclient gRPC client plus the request options every call needs."""

    def __init__(self, config: ConnectionConfig) -> None:
        import tritonclient.grpc as grpcclient

        if (config.client_cert is None) != (config.client_key is None):
            raise ServerConnectionError("--client-cert and --client-key go together (mutual TLS needs both)")
        self.config = config
        self.last_wire: dict[str, int] = {}  # bytes of the last annotate request and answer
        self.last_retries = (
            0  # times the last call was sent again (busy or unavailable); one thread per Connection
        )
        self._grpc = grpcclient
        self.client = grpcclient.InferenceServerClient(
            config.url,
            ssl=config.tls,
            root_certificates=_read(config.root_cert, "root certificate"),
            private_key=_read(config.client_key, "client key"),
            certificate_chain=_read(config.client_cert, "client certificate"),
            channel_args=[
                ("grpc.max_send_message_length", config.max_message_bytes),
                ("grpc.max_receive_message_length", config.max_message_bytes),
            ],
        )

    def close(self) -> None:
        """Close the channel."""
        self.client.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run fn, retrying with exponential backoff while the server answers UNAVAILABLE (and, apart, while
        it answers "server busy": jittered, for at most busy_wait_s); last_retries says how many times."""
        from tritonclient.utils import InferenceServerException

        delay = busy_delay = self.config.backoff_s
        busy_waited = 0.0
        attempt = 0  # UNAVAILABLE retries so far (server down); busy refusals are counted apart
        self.last_retries = 0
        while True:
            try:
                return fn()
            except InferenceServerException as e:
                status = str(e.status())
                message = str(e.message())
                restricted = RESTRICTED in message
                busy = status in RETRY_STATUSES and is_busy(message)
                if busy and busy_waited < self.config.busy_wait_s:
                    # Full jitter: clients refused together must not come back together.
                    pause = min(
                        random.uniform(busy_delay / 2, busy_delay), self.config.busy_wait_s - busy_waited
                    )
                    log.warning("%s: %s; retry %d in %.1f s", what, message, self.last_retries + 1, pause)
                    time.sleep(pause)
                    busy_waited += pause
                    busy_delay = min(busy_delay * 2, BUSY_MAX_DELAY_S)
                    self.last_retries += 1
                    continue
                if status in RETRY_STATUSES and not busy and not restricted and attempt < self.config.retries:
                    log.warning(
                        "%s: server unavailable (%s); retry %d/%d in %.1f s",
                        what,
                        message,
                        attempt + 1,
                        self.config.retries,
                        delay,
                    )
                    time.sleep(delay)
                    delay *= 2
                    attempt += 1
                    self.last_retries += 1
                    continue
                hint = f" (is the server running at {self.config.url}?)" if status in RETRY_STATUSES else ""
                if busy:
                    hint = f" (still busy after {busy_waited:.0f} s of retries; try again later or lower --concurrency)"
                if restricted:
                    hint = " (the server wants that header: pass it with --header 'NAME: VALUE')"
                if status == DEADLINE_STATUS:
                    # gRPC's own deadline, set from --timeout: say so, as a slow server looks the same as a hung one
                    hint = (
                        f" (no answer within --timeout {self.config.timeout_s:g} s, the client's deadline; "
                        "not retried)"
                    )
                sent = self.last_retries + 1
                tries = f" after {sent} attempts" if sent > 1 else ""
                raise ServerConnectionError(
                    f"{what} failed{tries}: [{status}] {message}{hint}", attempts=sent
                ) from e

    @property
    def _opts(self) -> dict[str, Any]:
        return {"headers": self.config.headers or None, "client_timeout": self.config.timeout_s}

    def annotate(
        self,
        volume: np.ndarray,
        spacing: np.ndarray,
        affine: np.ndarray,
        threshold: float | None = None,
        rules: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Send one canonical int16 volume; return (labels, removed, report) in canonical order."""
        g = self._grpc
        arrays: list[tuple[str, np.ndarray, str]] = [
            ("volume", np.ascontiguousarray(volume, dtype=np.int16), "INT16"),
            ("spacing", np.asarray(spacing, dtype=np.float32).reshape(3), "FP32"),
            ("affine", np.asarray(affine, dtype=np.float32).reshape(4, 4), "FP32"),
        ]
        if threshold is not None:
            arrays.append(("threshold", np.array([threshold], dtype=np.float32), "FP32"))
        if rules:
            arrays.append(("rules", np.array([json.dumps(rules).encode()], dtype=object), "BYTES"))
        inputs = []
        for name, arr, dtype in arrays:
            inp = g.InferInput(name, list(arr.shape), dtype)
            inp.set_data_from_numpy(arr)
            inputs.append(inp)
        names = ("labels_z", "removed_z", "report", "box", "removed_outside")
        outputs = [g.InferRequestedOutput(n) for n in names]
        result = self.call(
            f"annotate {list(volume.shape)}",
            lambda: self.client.infer(ENSEMBLE, inputs, outputs=outputs, **self._opts),
        )
        labels_z, removed_z, report, box, blocks = (result.as_numpy(n) for n in names)
        if any(x is None or x.size != 1 for x in (labels_z, removed_z, report)) or box is None:
            raise ServerConnectionError("the server's answer lacks labels_z, removed_z, report or box")
        # Tensor bytes each way (the payload, without gRPC framing): make bench-client prints them.
        packed = [x.reshape(-1)[0] for x in (labels_z, removed_z, report)]
        self.last_wire = {
            "request_bytes": sum(a.nbytes for _, a, _ in arrays),
            "response_bytes": sum(len(x) for x in packed)
            + box.nbytes
            + (0 if blocks is None else blocks.nbytes),
        }
        try:  # region first: labels and removed cover the box; outside it only removed blocks
            shape = box_shape(box)
            labels = full_size(volume.shape, box, unpack(packed[0], shape))
            removed = full_size(volume.shape, box, unpack(packed[1], shape), blocks)
        except AnswerError as e:
            raise ServerConnectionError(str(e)) from e
        raw = report.reshape(-1)[0]
        return labels, removed, json.loads(raw.decode() if isinstance(raw, bytes) else raw)

    def health(self) -> dict[str, Any]:
        """Live, ready, the ensemble's readiness and versions, and the operating threshold the server reports."""
        live = self.call("server live", lambda: self.client.is_server_live(**self._opts))
        ready = self.call("server ready", lambda: self.client.is_server_ready(**self._opts))
        out: dict[str, Any] = {
            "url": self.config.url,
            "live": bool(live),
            "ready": bool(ready),
            "models": self.models(),
        }
        out["ensemble_ready"] = any(m["name"] == ENSEMBLE and m["state"] == "READY" for m in out["models"])
        out.update(self.operating_point())
        return out

    def models(self) -> list[dict[str, str]]:
        """The server's model repository index: name, version, state (and reason when not ready).

        Where the repository protocol is restricted (the image's default), the ensemble's models are asked
        one by one through the health protocol instead.
        """
        try:
            index = self.call(
                "model repository index",
                lambda: self.client.get_model_repository_index(as_json=True, **self._opts),
            )
        except ServerConnectionError as e:
            if RESTRICTED not in str(e):
                raise
            return [
                {"name": m, "version": "", "state": "READY" if self._model_ready(m) else "UNAVAILABLE"}
                for m in SERVED_MODELS
            ]
        return [
            {
                "name": m.get("name", ""),
                "version": m.get("version", ""),
                "state": m.get("state", ""),
                **({"reason": m["reason"]} if m.get("reason") else {}),
            }
            for m in index.get("models", [])
        ]

    def _model_ready(self, model: str) -> bool:
        return bool(self.call(f"{model} ready", lambda: self.client.is_model_ready(model, **self._opts)))

    def operating_point(self) -> dict[str, Any]:
        """theta and spacing from the model configs' parameters (eanno_window, else the ensemble)."""
        found: dict[str, Any] = {
            "theta": None,
            "model_spacing": None,
            "model_name": None,
            "model_version": None,
        }
        for model in (WINDOW_MODEL, ENSEMBLE):
            try:
                config = self.call(
                    f"config of {model}",
                    functools.partial(self.client.get_model_config, model, as_json=True, **self._opts),
                )
            except ServerConnectionError:
                continue
            params = config.get("config", {}).get("parameters", {})
            for key, target in (
                ("theta", "theta"),
                ("spacing", "model_spacing"),
                ("model_name", "model_name"),
                ("model_version", "model_version"),
            ):
                raw = params.get(key, {}).get("string_value")
                if raw is not None and found[target] is None:
                    found[target] = json.loads(raw) if key in ("theta", "spacing") else raw
            if found["theta"] is not None:
                found["theta_from"] = model
                break
        return found
