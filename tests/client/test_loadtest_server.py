"""eanno-client loadtest against a real Triton server: metrics parsed from its endpoint, counts that agree."""

from __future__ import annotations

import json
import math
import urllib.request

import pytest
from click.testing import CliRunner
from eanno_client.cli import main
from eanno_client.server_metrics import fetch_metrics, parse_metrics, step_view
from eanno_serving.repository import WINDOW_BATCH

from .server_model import META, hu_band_server

pytestmark = [pytest.mark.server, pytest.mark.slow]
SHAPE = (40, 36, 20)  # on the HU-band model's own grid (1.5, 1.5, 2.0 mm): no resampling
SPACING = "1.5,1.5,2.0"
# Patches per BLS request of the window to the segmenter, as the repository writes it for the flavour
# hu_band_server serves (python-onnxruntime: 1 since the CPU batching change).
PATCHES_PER_REQUEST = WINDOW_BATCH["python-onnxruntime"]


def patches_per_volume(shape, patch, step) -> int:
    """CONTRACTS.md sliding window: ceil((n - p) / (step p)) + 1 tiles per axis (one where n <= p)."""
    return math.prod(
        1 if n <= p else math.ceil((n - p) / (step * p)) + 1 for n, p in zip(shape, patch, strict=True)
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A HU-band server for the module; it must leave no shared-memory region behind."""
    with hu_band_server(tmp_path_factory.mktemp("loadtest-server")) as s:
        yield s


def loadtest(server, tmp_path, *args):
    out = tmp_path / "load.json"
    result = CliRunner().invoke(
        main,
        [
            "loadtest",
            "--url",
            server.urls["grpc"],
            "--metrics-url",
            server.urls["metrics"],
            "--json",
            str(out),
            *map(str, args),
        ],
    )
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text()), result.output


def test_metrics_parser_on_the_servers_own_text(server, tmp_path):
    """The captured exposition text parses; one load test's change matches what the window must send."""

    def capture():
        with urllib.request.urlopen(server.urls["metrics"], timeout=5) as r:
            return r.read().decode()

    before_text = capture()
    assert "nv_inference_exec_count" in before_text
    before = parse_metrics(before_text)
    assert {"eanno_annotate", "eanno_window", "eanno_segmenter", "eanno_postproc"} <= set(before)
    result, _ = loadtest(
        server,
        tmp_path,
        "--synthetic",
        "x".join(map(str, SHAPE)),
        "--spacing",
        SPACING,
        "-c",
        "1",
        "--requests",
        "2",
        "--warmup",
        "1",
    )
    view = step_view(before, parse_metrics(capture()))
    sent = 3  # warm-up + 2
    assert view["eanno_annotate"]["requests"] == sent and view["eanno_annotate"]["failures"] == 0
    assert view["eanno_window"]["requests"] == sent and view["eanno_postproc"]["requests"] == sent
    patches = patches_per_volume(SHAPE, META["patch_size"], META["step"])
    seg = view["eanno_segmenter"]
    assert seg["inferences"] == sent * patches  # every patch once, counted per batch item
    assert seg["requests"] == sent * math.ceil(patches / PATCHES_PER_REQUEST)
    assert 1 <= seg["executions"] <= seg["requests"]
    assert seg["inferences_per_execution"] == pytest.approx(seg["inferences"] / seg["executions"], abs=1e-3)
    assert seg["queue_ms"] is not None and seg["queue_ms"] >= 0
    assert seg["compute_infer_ms"] > 0


def test_short_loadtest_counts_match_the_server(server, tmp_path):
    """Two steps of a few requests: the JSON's keys, and each step's requests as the server counted them."""
    plot = tmp_path / "load.png"
    before = fetch_metrics(server.urls["metrics"])
    result, output = loadtest(
        server,
        tmp_path,
        "--synthetic",
        "x".join(map(str, SHAPE)),
        "--spacing",
        SPACING,
        "-c",
        "1,2",
        "--requests",
        "4",
        "--duration",
        "120",
        "--warmup",
        "1",
        "--plot",
        plot,
    )
    after = fetch_metrics(server.urls["metrics"])
    assert set(result) >= {"url", "metrics_url", "date", "payloads", "bounds", "steps"}
    assert result["payloads"][0]["shape"] == list(SHAPE)
    assert [s["concurrency"] for s in result["steps"]] == [1, 2]
    for step in result["steps"]:
        assert set(step) >= {"volumes_per_min", "voxels_per_s", "latency_ms", "errors", "server", "seconds"}
        assert (step["requests"], step["ok"], step["errors"]) == (4, 4, 0)
        lat = step["latency_ms"]
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"]
        assert step["voxels_per_s"] == pytest.approx(step["volumes_per_s"] * math.prod(SHAPE), rel=1e-3)
        assert (
            step["server"]["eanno_annotate"]["requests"] == 4
        )  # the server saw exactly this step's requests
        assert step["server"]["eanno_segmenter"]["inferences_per_execution"] >= 1
    total = step_view(before, after)["eanno_annotate"]["requests"]
    assert total == 1 + 4 + 4  # warm-up and both steps, nothing else
    assert "c=2" in output and "vol/min" in output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 5000
