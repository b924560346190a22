"""The ensemble in a real Triton server (the nvidia-pytriton wheel) against the in-process path."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from eanno_postproc import Rules, refine
from eanno_serving.handoff import box_probs, model_grid_flags
from eanno_serving.local import LocalServer, free_ports
from eanno_serving.smoke import annotate_remote, connect
from tritonclient.utils import InferenceServerException

from .conftest import TINY_META, inprocess_window, phantom
from .server_fixtures import MAX_VOXELS, inprocess_probs, tiny_repository

pytestmark = [pytest.mark.server, pytest.mark.slow]
LESIONS = (3, 4, 5)
CASES = [
    ((48, 44, 24), (0.9, 0.9, 1.6), 1),
    ((30, 40, 18), (1.5, 1.5, 2.0), 2),
    ((20, 26, 30), (2.0, 1.2, 1.0), 3),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """One server for the module; on teardown it must leave no shared-memory region behind."""
    folder = tmp_path_factory.mktemp("serving")
    grpc_port, http_port, metrics_port = free_ports()
    srv = LocalServer(
        tiny_repository(folder),
        grpc_port=grpc_port,
        http_port=http_port,
        metrics_port=metrics_port,
        run_dir=folder / "run",
    )
    with srv:
        prefix = srv.state.shm_prefix
        yield srv
    assert srv.leftover_shm(prefix) == []


@pytest.fixture(scope="module")
def client(server: LocalServer):
    return connect(server.urls["grpc"])


def expected(volume: np.ndarray, spacing) -> tuple[np.ndarray, object]:
    probs = inprocess_probs(volume, spacing)
    return probs, refine(volume, probs=probs, theta=TINY_META["theta"], affine=np.diag([*spacing, 1.0]))


@pytest.mark.parametrize("shape,spacing,seed", CASES)
def test_ensemble_labels_equal_the_inprocess_predictor_plus_refine(client, shape, spacing, seed) -> None:
    volume = phantom(shape, seed)
    served = annotate_remote(client, volume, spacing)
    _, ref = expected(volume, spacing)
    assert np.isin(ref.labels, LESIONS).any() and ref.removed.any(), "phantom lacks kept or removed lesions"
    # The window hands float16 probabilities to postproc (half the memory of the largest tensor); a voxel
    # may flip only where a probability lies within fp16 rounding (<= 2.4e-4) of theta or of a tie.
    differing = np.mean(served.labels != ref.labels)
    assert differing <= 0.001, f"{differing:.4%} of voxels differ"
    assert np.mean(served.removed != ref.removed) <= 0.001
    assert served.report["model"] == {
        "name": "tiny",
        "version": "test",
        "theta": TINY_META["theta"],
        "spacing": TINY_META["spacing"],
    }
    # the whole-scan flags (judged by the window on the model grid) reach the client, as computed in-process
    sw = inprocess_window(volume, spacing)
    assert served.report["flags"] == model_grid_flags(
        sw, sw.coarse(np.float16), TINY_META["theta"], Rules.defaults(), np.diag([*spacing, 1.0]), TINY_META
    )


def test_window_output_matches_the_inprocess_probabilities(client) -> None:
    shape, spacing, seed = CASES[0]
    volume = phantom(shape, seed)
    inputs = [
        grpcclient.InferInput("volume", list(shape), "INT16"),
        grpcclient.InferInput("spacing", [3], "FP32"),
    ]
    inputs[0].set_data_from_numpy(volume)
    inputs[1].set_data_from_numpy(np.asarray(spacing, np.float32))
    result = client.infer("eanno_window", inputs)
    box, raw = result.as_numpy("box"), result.as_numpy("region").reshape(-1)[0]
    probs = box_probs(result.as_numpy("coarse"), box, json.loads(raw))  # what postproc makes of the hand-off
    sl = tuple(slice(int(a), int(b)) for a, b in zip(box[0], box[1], strict=True))
    assert probs.dtype == np.float16 and probs.shape == (6, *(s.stop - s.start for s in sl))  # region first
    np.testing.assert_allclose(
        probs.astype(np.float32), inprocess_probs(volume, spacing)[(slice(None), *sl)], atol=5e-4
    )


def test_report_agrees_with_the_labels(client) -> None:
    shape, spacing, seed = CASES[0]
    volume = phantom(shape, seed)
    served = annotate_remote(client, volume, spacing)
    lesions = served.report["lesions"]
    assert lesions, "no candidates in the report"
    kept_voxels = {c: 0 for c in LESIONS}
    for lesion in lesions:
        if lesion["decision"] == "kept":
            kept_voxels[lesion["class_id"]] += lesion["voxels"]
    for c in LESIONS:
        assert kept_voxels[c] == int((served.labels == c).sum())
    removed = [x for x in lesions if x["decision"] != "kept"]
    assert sum(x["voxels"] for x in removed) == int((served.removed > 0).sum())


def test_four_concurrent_clients_get_their_own_correct_answers(server, client) -> None:
    volumes = [(phantom(shape, seed), spacing) for shape, spacing, seed in CASES] + [
        (phantom((36, 30, 22), 9), (1.0, 1.0, 1.5))
    ]
    sequential = [annotate_remote(client, v, s) for v, s in volumes]

    def call(i: int):
        return annotate_remote(connect(server.urls["grpc"]), *volumes[i])

    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(call, range(4)))
    for (v, _), seq, par in zip(volumes, sequential, parallel, strict=True):
        assert par.labels.shape == v.shape and par.labels.any()
        np.testing.assert_array_equal(par.labels, seq.labels)
        np.testing.assert_array_equal(par.removed, seq.removed)
        assert par.report["lesions"] == seq.report["lesions"]


@pytest.mark.parametrize(
    "spacing", [[0.0, 1.0, 1.0], [1.0, -1.0, 1.0], [np.nan, 1.0, 1.0], [1.0, np.inf, 1.0]]
)
def test_bad_spacing_is_refused_per_request(client, spacing) -> None:
    with pytest.raises(InferenceServerException, match="invalid spacing"):
        annotate_remote(client, phantom((20, 20, 10), 0), spacing)


def test_too_large_a_volume_is_refused_and_the_server_keeps_serving(client) -> None:
    with pytest.raises(InferenceServerException, match="volume too large"):
        annotate_remote(client, np.zeros((100, 100, 21), np.int16), (1.0, 1.0, 1.0))
    assert 100 * 100 * 21 > MAX_VOXELS
    assert annotate_remote(client, phantom((20, 20, 10), 0), (1.0, 1.0, 1.0)).labels.shape == (20, 20, 10)


def test_overrides_threshold_rules_and_affine_reach_refine(client) -> None:
    shape, spacing, seed = CASES[0]
    volume = phantom(shape, seed)
    probs, _ = expected(volume, spacing)
    affine = np.array(
        [[-spacing[0], 0, 0, 10], [0, -spacing[1], 0, 20], [0, 0, spacing[2], -5], [0, 0, 0, 1]]
    )
    served = annotate_remote(client, volume, spacing, threshold=0.2, affine=affine, rules={"connectivity": 6})
    ref = refine(volume, probs=probs, theta=0.2, affine=affine, rules=Rules.from_dict({"connectivity": 6}))
    assert np.mean(served.labels != ref.labels) <= 0.001
    assert served.report["theta"] == pytest.approx(0.2)
    with pytest.raises(InferenceServerException, match="rules"):
        annotate_remote(client, volume, spacing, rules={"no_such_rule": 1})


def test_the_server_reports_theta_and_spacing_in_the_ensemble_config(client) -> None:
    config = client.get_model_config("eanno_annotate").config
    assert float(config.parameters["theta"].string_value) == TINY_META["theta"]
    assert config.parameters["spacing"].string_value == "[1.5, 1.5, 2.0]"


def test_segmenter_logged_its_providers(server) -> None:
    log = Path(server.state.log).read_text()
    assert "ONNX Runtime providers ['CPUExecutionProvider']" in log


def test_no_pancreas_answers_an_empty_box_and_draws_outside_candidates_from_the_model_grid(client) -> None:
    volume = np.full((40, 36, 20), 40, np.int16)
    volume[5:10, 5:10, 5:10] = -100  # lesion-like, and no organ anywhere: nothing to refine at full size
    served = annotate_remote(client, volume, (1.5, 1.5, 2.0))
    assert (served.box[0] == served.box[1]).all()
    assert not served.labels.any() and served.removed.any()
    lesions = served.report["lesions"]
    assert lesions and all(
        x["grid"] == "model" and x["decision"] == "removed_outside_pancreas" for x in lesions
    )
    assert sum(x["voxels"] for x in lesions) == int((served.removed > 0).sum())
    assert served.report["summary"]["pancreas_empty"]
