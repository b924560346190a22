"""The load test's arithmetic and parsing without a server: percentiles, throughput, metric deltas."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from eanno_client.cli import main
from eanno_client.loadstats import Record, percentiles, relative_difference, summarise
from eanno_client.loadtest import parse_shape, synthetic_payload
from eanno_client.server_metrics import MetricsError, metrics_url_for, parse_metrics, step_view


def test_percentiles_interpolate_between_ranks():
    # 1..100: p50 lies halfway between 50 and 51, p90 at 90.1, p95 at 95.05, p99 at 99.01 (linear between ranks)
    got = percentiles(list(range(1, 101)))
    assert got == pytest.approx({"p50": 50.5, "p90": 90.1, "p95": 95.05, "p99": 99.01})
    assert percentiles([]) == {"p50": None, "p90": None, "p95": None, "p99": None}
    assert percentiles([7.0]) == {"p50": 7.0, "p90": 7.0, "p95": 7.0, "p99": 7.0}


def test_summarise_counts_only_successes_in_throughput():
    # two clients, 0..10 s: 4 successes of 2.5 s each and one failure; 1000 voxels a volume
    records = [
        Record(0.0, 2.5, 1000),
        Record(2.5, 5.0, 1000),
        Record(0.0, 2.5, 1000),
        Record(2.5, 5.0, 1000),
        Record(5.0, 10.0, 1000, "boom"),
    ]
    s = summarise(records, concurrency=2)
    assert (s["requests"], s["ok"], s["errors"]) == (5, 4, 1)
    assert s["seconds"] == 10.0
    assert s["volumes_per_s"] == pytest.approx(0.4)
    assert s["volumes_per_min"] == pytest.approx(24.0)
    assert s["voxels_per_s"] == 400
    assert s["latency_ms"]["p50"] == 2500.0 and s["latency_ms"]["mean"] == 2500.0
    assert s["error_messages"] == ["boom"]


def test_summarise_empty_step():
    s = summarise([], concurrency=4)
    assert s["ok"] == 0 and s["volumes_per_s"] == 0.0 and s["latency_ms"]["p99"] is None


def test_relative_difference():
    assert relative_difference(1.1, 1.0) == pytest.approx(0.1)
    assert relative_difference(0.9, 1.0) == pytest.approx(0.1)
    assert relative_difference(0.0, 0.0) == 0.0
    assert relative_difference(1.0, 0.0) == float("inf")


TRITON_STYLE = """\
# HELP nv_inference_request_success Number of successful inference requests, all batch sizes
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="eanno_segmenter",version="1"} 10
nv_inference_request_success{model="eanno_segmenter",version="2"} 2
nv_inference_request_success{model="eanno_annotate",version="1"} 3
# HELP nv_inference_request_failure Number of failed inference requests, all batch sizes
# TYPE nv_inference_request_failure counter
nv_inference_request_failure{model="eanno_segmenter",version="1"} 0
nv_inference_request_failure{model="eanno_annotate",version="1"} 1
# HELP nv_inference_count Number of inferences performed
# TYPE nv_inference_count counter
nv_inference_count{model="eanno_segmenter",version="1"} 48
# HELP nv_inference_exec_count Number of model executions performed
# TYPE nv_inference_exec_count counter
nv_inference_exec_count{model="eanno_segmenter",version="1"} 6
# HELP nv_inference_queue_duration_us Cumulative inference queuing duration in microseconds
# TYPE nv_inference_queue_duration_us counter
nv_inference_queue_duration_us{model="eanno_segmenter",version="1"} 24000
# HELP nv_cpu_utilization CPU utilization rate [0.0 - 1.0]
# TYPE nv_cpu_utilization gauge
nv_cpu_utilization 0.5
"""


def test_parse_sums_versions_and_ignores_other_metrics():
    snap = parse_metrics(TRITON_STYLE)
    assert set(snap) == {"eanno_segmenter", "eanno_annotate"}
    assert snap["eanno_segmenter"]["success"] == 12  # versions 1 and 2
    assert snap["eanno_annotate"] == {"success": 3, "failure": 1}


def test_step_view_is_the_change_over_the_step():
    before = parse_metrics(TRITON_STYLE)
    after = {m: dict(c) for m, c in before.items()}
    seg = after["eanno_segmenter"]
    # 8 more requests of 4 patches, batched into 2 executions of 16 patches, 8 ms queued each
    seg.update(
        success=seg["success"] + 8,
        inferences=seg["inferences"] + 32,
        executions=seg["executions"] + 2,
        queue_us=seg["queue_us"] + 64000,
    )
    view = step_view(before, after)
    assert set(view) == {"eanno_segmenter"}  # the ensemble served nothing in this step
    v = view["eanno_segmenter"]
    assert (v["requests"], v["executions"], v["inferences"]) == (8, 2, 32)
    assert v["requests_per_execution"] == 4.0 and v["inferences_per_execution"] == 16.0
    assert v["queue_ms"] == 8.0
    assert v["compute_infer_ms"] == 0.0


def test_parse_rejects_what_is_not_prometheus_text():
    with pytest.raises(MetricsError):
        parse_metrics("nv_inference_count{model= 3 garbage")


def test_metrics_url_from_grpc_url():
    assert metrics_url_for("localhost:8001") == "http://localhost:8002/metrics"
    assert metrics_url_for("10.0.0.7:9001", 9002) == "http://10.0.0.7:9002/metrics"


def test_synthetic_volume_is_deterministic_and_shaped():
    a, b = synthetic_payload((40, 36, 20), (1.5, 1.5, 2.0)), synthetic_payload((40, 36, 20), (1.5, 1.5, 2.0))
    assert a.volume.dtype == np.int16 and a.volume.shape == (40, 36, 20) and a.voxels == 40 * 36 * 20
    np.testing.assert_array_equal(a.volume, b.volume)
    assert a.volume.min() <= -950 and 0 < np.median(a.volume[20, 18]) < 120  # air outside, tissue inside
    np.testing.assert_allclose(np.diag(a.affine)[:3], [1.5, 1.5, 2.0])
    assert parse_shape("512x512x300") == (512, 512, 300)
    with pytest.raises(ValueError, match="512x512"):
        parse_shape("512x512")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--concurrency", "1,0"], "positive integers"),
        (["--synthetic", "10x10"], "is not a shape"),
        (["--synthetic", "8x8x8", "--spacing", "1,1"], "three spacings"),
        (["--synthetic", "8x8x8", "--cases", "."], "not both"),
    ],
)
def test_bad_options_are_usage_errors(args, message):
    result = CliRunner().invoke(main, ["loadtest", "--url", "127.0.0.1:1", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_unreachable_server_is_a_clear_error():
    result = CliRunner().invoke(
        main,
        [
            "loadtest",
            "--url",
            "127.0.0.1:1",
            "--synthetic",
            "8x8x8",
            "--retries",
            "0",
            "--timeout",
            "5",
            "--no-metrics",
        ],
    )
    assert result.exit_code == 3
    assert "127.0.0.1:1" in result.output and "Traceback" not in result.output
