"""Triton's own view of a load: its Prometheus metrics endpoint, parsed, and the change over a step.

Counters read (per model, summed over versions): nv_inference_request_success / _failure (requests),
nv_inference_count (inferences: batch items), nv_inference_exec_count (model executions: a dynamic
batch counts once), nv_inference_request_duration_us, nv_inference_queue_duration_us,
nv_inference_compute_infer_duration_us (cumulative over requests).
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from eanno_contracts.errors import EannoError
from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger(__name__)
COUNTERS = {
    "nv_inference_request_success": "success",
    "nv_inference_request_failure": "failure",
    "nv_inference_count": "inferences",
    "nv_inference_exec_count": "executions",
    "nv_inference_request_duration_us": "request_us",
    "nv_inference_queue_duration_us": "queue_us",
    "nv_inference_compute_input_duration_us": "compute_input_us",
    "nv_inference_compute_infer_duration_us": "compute_infer_us",
    "nv_inference_compute_output_duration_us": "compute_output_us",
}
# A snapshot: model name -> counter key (values of COUNTERS) -> cumulative value.
Snapshot = dict[str, dict[str, float]]


class MetricsError(EannoError, RuntimeError):
    """The metrics endpoint could not be read or parsed; the message names the URL."""


def metrics_url_for(grpc_url: str, port: int = 8002) -> str:
    """The metrics URL on the gRPC address's host: 'host:8001' -> 'http://host:8002/metrics'."""
    host = grpc_url.rsplit(":", 1)[0] if ":" in grpc_url else grpc_url
    return f"http://{host or 'localhost'}:{port}/metrics"


def parse_metrics(text: str) -> Snapshot:
    """Per-model counters from Prometheus exposition text (other metrics ignored)."""
    snap: Snapshot = {}
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as e:
        raise MetricsError(f"not Prometheus text: {e}") from e
    for family in families:
        for sample in family.samples:
            key = COUNTERS.get(sample.name) or COUNTERS.get(sample.name.removesuffix("_total"))
            model = sample.labels.get("model")
            if key is None or model is None:
                continue
            per_model = snap.setdefault(model, {})
            per_model[key] = per_model.get(key, 0.0) + float(sample.value)
    return snap


def fetch_metrics(url: str, timeout: float = 5.0) -> Snapshot:
    """Read and parse the metrics endpoint at url (MetricsError when unreachable or not metrics)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError) as e:
        raise MetricsError(f"cannot read Triton metrics at {url}: {e}") from e
    snap = parse_metrics(text)
    if not snap:
        raise MetricsError(f"{url} answered, but with no nv_inference_* per-model counters")
    return snap


def delta(before: Snapshot, after: Snapshot) -> Snapshot:
    """after - before per model and counter (a model absent before counts from 0)."""
    return {
        model: {k: v - before.get(model, {}).get(k, 0.0) for k, v in counters.items()}
        for model, counters in after.items()
    }


def _per(total: float, count: float, scale: float = 1.0) -> float | None:
    return round(total / count * scale, 3) if count else None


def model_view(d: Mapping[str, float]) -> dict[str, Any]:
    """One model's step: requests, executions, inferences, mean queue/compute/request time per request (ms)."""
    requests = d.get("success", 0.0) + d.get("failure", 0.0)
    executions = d.get("executions", 0.0)
    return {
        "requests": int(requests),
        "failures": int(d.get("failure", 0.0)),
        "executions": int(executions),
        "inferences": int(d.get("inferences", 0.0)),
        "request_ms": _per(d.get("request_us", 0.0), requests, 1e-3),
        "queue_ms": _per(d.get("queue_us", 0.0), requests, 1e-3),
        "compute_infer_ms": _per(d.get("compute_infer_us", 0.0), requests, 1e-3),
        "compute_io_ms": _per(
            d.get("compute_input_us", 0.0) + d.get("compute_output_us", 0.0), requests, 1e-3
        ),
        # > 1 only where the scheduler batched requests together (the segmenter's dynamic batching)
        "requests_per_execution": _per(requests, executions),
        "inferences_per_execution": _per(d.get("inferences", 0.0), executions),
    }


def step_view(before: Snapshot, after: Snapshot) -> dict[str, dict[str, Any]]:
    """The server's view of one load step: model_view of every model that served requests in it."""
    return {
        model: model_view(d)
        for model, d in sorted(delta(before, after).items())
        if d.get("success", 0.0) + d.get("failure", 0.0) > 0
    }
