"""Who may do what, and error codes, against a real server started as `eanno-server start` starts it.

- Admin protocols (model repository, shared memory, statistics, trace, logging) are refused without the
  admin key and served with it; inference is refused without the site token and served with it, through
  `eanno-client --header`. The image's entrypoint passes the very same tritonserver options.
- A bad request answers INVALID_ARG with the reason; the client does not retry it (nor a restricted-protocol
  refusal, which Triton also answers UNAVAILABLE) and prints the server's reason.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from click.testing import CliRunner
from eanno_client.cli import main as client_main
from eanno_client.connection import Connection, ConnectionConfig, ServerConnectionError
from eanno_serving.cli import main as server_main
from eanno_serving.local import ADMIN_HEADER, GRPC_HEADER_PREFIX, SITE_HEADER, free_ports, restricted_args
from tritonclient.utils import InferenceServerException

from .conftest import save_nifti
from .faults_helpers import MAX_VOXELS, limited_repository
from .server_model import lesion_phantom

pytestmark = [pytest.mark.server, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
ADMIN_KEY, SITE_TOKEN = "admin-7f3c", "site-91ab"
SITE = {GRPC_HEADER_PREFIX + SITE_HEADER: SITE_TOKEN}
ADMIN = {GRPC_HEADER_PREFIX + ADMIN_HEADER: ADMIN_KEY}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """`eanno-server start --admin-key K --site-token T` on the HU-band repository (voxel limit); stopped at the end."""
    folder = tmp_path_factory.mktemp("access")
    run, (grpc, http, metrics) = str(folder / "run"), free_ports()
    started = CliRunner().invoke(
        server_main,
        [
            "start",
            "--repository",
            str(limited_repository(folder)),
            "--run-dir",
            run,
            "--grpc-port",
            str(grpc),
            "--http-port",
            str(http),
            "--metrics-port",
            str(metrics),
            "--admin-key",
            ADMIN_KEY,
            "--site-token",
            SITE_TOKEN,
        ],
    )
    assert started.exit_code == 0, started.output
    assert "admin protocols: need the given admin key; inference: needs the site token" in started.output
    yield {"grpc": f"127.0.0.1:{grpc}", "http": f"127.0.0.1:{http}"}
    assert CliRunner().invoke(server_main, ["stop", "--run-dir", run]).exit_code == 0


def refused(call) -> str:
    """The message of a refused call (fails the test when the call is served)."""
    with pytest.raises(InferenceServerException) as e:
        call()
    return str(e.value)


def test_admin_protocols_need_the_admin_key(server) -> None:
    client = grpcclient.InferenceServerClient(server["grpc"])
    try:
        calls = {
            "statistics": lambda h: client.get_inference_statistics(headers=h),
            "logging": lambda h: client.update_log_settings({"log_verbose_level": 1}, headers=h),
            "shared-memory": lambda h: client.get_system_shared_memory_status(headers=h),
            "model-repository": lambda h: client.get_model_repository_index(headers=h),
            "trace": lambda h: client.get_trace_settings(headers=h),
        }
        for name, call in calls.items():
            message = refused(lambda call=call: call(None))
            assert "protocol is restricted" in message and ADMIN_HEADER in message, (name, message)
            call(ADMIN)  # served with the key
        refused(lambda: client.register_system_shared_memory("probe", "/eanno_probe", 64))
        client.get_model_config("eanno_annotate")  # configs, health and metadata stay open
        assert client.is_server_ready()
    finally:
        client.close()
    http = httpclient.InferenceServerClient(server["http"])
    assert "403" in refused(lambda: http.get_inference_statistics())
    http.get_inference_statistics(headers={ADMIN_HEADER: ADMIN_KEY})


def test_inference_needs_the_site_token_and_the_refusal_is_not_retried(server, tmp_path, caplog) -> None:
    vol = np.full((30, 28, 14), 40, np.int16)
    with (
        Connection(ConnectionConfig(url=server["grpc"], retries=3, backoff_s=0.5)) as conn,
        caplog.at_level(logging.WARNING),
    ):
        with pytest.raises(ServerConnectionError, match="protocol is restricted.*--header"):
            conn.annotate(vol, np.array([1.5, 1.5, 2.0]), np.eye(4))
    assert not [r for r in caplog.records if "retry" in r.getMessage()], "a restricted refusal was retried"
    hu, affine, _ = lesion_phantom("RAS")
    case = save_nifti(tmp_path / "case.nii.gz", hu, affine)
    header = f"{GRPC_HEADER_PREFIX}{SITE_HEADER}: {SITE_TOKEN}"
    ok = CliRunner().invoke(
        client_main,
        [
            "annotate",
            str(case),
            "--out",
            str(tmp_path / "out"),
            "--url",
            server["grpc"],
            "--header",
            header,
            "--no-preview",
            "--json",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "out" / "case" / "labels.nii.gz").is_file()
    health = CliRunner().invoke(client_main, ["health", "--url", server["grpc"], "--json"])
    assert health.exit_code == 0, health.output  # the repository index is restricted: readiness per model
    assert json.loads(health.stdout)["ensemble_ready"] is True


@pytest.mark.parametrize(
    "volume,spacing,rules,reason",
    [
        (np.zeros((20, 20, 10), np.int16), [0.0, 1.0, 1.0], None, "spacing"),
        (np.zeros((80, 80, 60), np.int16), [1.5, 1.5, 2.0], None, f"> limit {MAX_VOXELS}"),
        (np.zeros((20, 20, 10), np.int16), [1.5, 1.5, 2.0], {"connectivity": 5}, "invalid rules override"),
    ],
)
def test_a_bad_request_answers_invalid_arg_with_the_reason_and_is_not_retried(
    server, volume, spacing, rules, reason, caplog
) -> None:
    config = ConnectionConfig(url=server["grpc"], retries=3, headers=SITE)
    with Connection(config) as conn, caplog.at_level(logging.WARNING):
        with pytest.raises(ServerConnectionError) as e:
            conn.annotate(volume, np.array(spacing), np.eye(4), rules=rules)
    assert "INVALID_ARGUMENT" in str(e.value) and reason in str(e.value), str(e.value)
    assert not [r for r in caplog.records if "retry" in r.getMessage()]


def test_a_wrong_dtype_answers_invalid_arg(server) -> None:
    client = grpcclient.InferenceServerClient(server["grpc"])
    try:
        inputs = [
            grpcclient.InferInput("volume", [8, 8, 8], "FP32"),
            grpcclient.InferInput("spacing", [3], "FP32"),
        ]
        inputs[0].set_data_from_numpy(np.zeros((8, 8, 8), np.float32))
        inputs[1].set_data_from_numpy(np.ones(3, np.float32))
        with pytest.raises(InferenceServerException) as e:
            client.infer("eanno_annotate", inputs, headers=SITE)
    finally:
        client.close()
    assert str(e.value.status()) == "StatusCode.INVALID_ARGUMENT" and "INT16" in str(e.value)


def test_the_image_entrypoint_restricts_exactly_as_eanno_server(tmp_path) -> None:
    """docker/entrypoint.sh with stand-ins for python3 and tritonserver that record their arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("python3", "tritonserver"):
        (bin_dir / name).write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{tmp_path}/{name}.args"\n')
        (bin_dir / name).chmod(0o755)
    repo = tmp_path / "models"
    (repo / "eanno_segmenter").mkdir(parents=True)
    (repo / "eanno_segmenter" / "model.onnx").write_bytes(b"onnx")
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "EANNO_REPOSITORY": str(repo),
        "EANNO_ADMIN_KEY": ADMIN_KEY,
        "EANNO_SITE_TOKEN": SITE_TOKEN,
        "EANNO_PLAN_PRECISION": "fp32",
    }
    subprocess.run(["bash", str(REPO / "docker" / "entrypoint.sh"), "--log-verbose=1"], env=env, check=True)
    args = (tmp_path / "tritonserver.args").read_text().splitlines()
    assert [a for a in args if "restricted" in a] == restricted_args(ADMIN_KEY, SITE_TOKEN)
    assert args[-1] == "--log-verbose=1" and f"--model-repository={repo}" in args
    place = (tmp_path / "python3.args").read_text().splitlines()
    assert place[:3] == ["-m", "eanno_export.deploy", "place"] and place[-2:] == ["--precision", "fp32"]
    env.pop("EANNO_ADMIN_KEY")
    env.pop("EANNO_SITE_TOKEN")
    subprocess.run(["bash", str(REPO / "docker" / "entrypoint.sh")], env=env, check=True)
    args = [a for a in (tmp_path / "tritonserver.args").read_text().splitlines() if "restricted" in a]
    assert len(args) == 2 and ADMIN_KEY not in "".join(args)  # a random admin key; inference open
    assert args[0].startswith(
        "--grpc-restricted-protocol=model-repository,shared-memory,statistics,trace,logging:"
    )
