"""The image's Python side, reproduced here: the three Python models on CPython 3.10 answer as on 3.11.

nvcr.io/nvidia/tritonserver:24.10-py3 is Triton 2.51 with CPython 3.10: the nvidia-pytriton wheel's server
with its `python_backend_stubs/3.10` stub, fed by a 3.10 venv made by docker/install-server-python.sh (the
script the Dockerfile runs), is that server's Python side. Labels and removed maps must be identical to
today's 3.11 path, on phantoms and on the real CT; and `pip install ./client` on 3.10 must annotate the real
CT against it (and on 3.13, where the client takes numpy 2). Skips with the reason where no such Python exists.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from eanno_serving.local import LocalServer, free_ports
from eanno_serving.smoke import Served, annotate_remote, connect

from .py310 import client_env, find_python, require_python310, server_env

pytestmark = [pytest.mark.server, pytest.mark.slow]
PHANTOM_SEEDS = (11, 12)
CLIENT_PYTHONS = ("3.10", "3.13")  # the workstation range's ends (client/README.md)


@pytest.fixture(scope="module")
def python310() -> Path:
    """A CPython 3.10 interpreter, or a skip saying none was found."""
    return require_python310("the image's Python side cannot be reproduced")


@pytest.fixture(scope="module")
def server_python(python310: Path) -> Path:
    """The 3.10 venv with the image's server-side packages (cached between sessions)."""
    python, seconds = server_env(python310)
    print(f"\n3.10 server env ready in {seconds:.1f} s: {python}")
    return python


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python-onnxruntime repository of the shipped model, as eanno-server writes it."""
    from eanno_serving.default import default_repository

    return default_repository(tmp_path_factory.mktemp("repo"))


@pytest.fixture(scope="module")
def cases(real_ct_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """name -> (int16 volume, spacing, affine): two phantoms and the real CT, canonical (RAS) order."""
    from eanno_training.phantoms import generate_phantom

    out = {}
    for seed in PHANTOM_SEEDS:
        p = generate_phantom(seed, shape=(112, 96, 40), spacing=(1.6, 1.6, 3.0), orientation="RAS")
        out[f"phantom-{seed}"] = (p.ct.astype(np.int16), np.asarray(p.spacing, np.float32), p.affine)
    img = nib.as_closest_canonical(nib.load(real_ct_dir / "example_ct_sm.nii.gz"))
    out["real-ct"] = (
        np.asarray(img.dataobj).astype(np.int16),
        np.asarray(img.header.get_zooms()[:3], np.float32),
        img.affine,
    )
    return out


def _serve(server: LocalServer, cases: dict) -> dict[str, Served]:
    client = connect(server.urls["grpc"])
    try:
        return {name: annotate_remote(client, v, s, affine=a) for name, (v, s, a) in cases.items()}
    finally:
        client.close()


def _server(repository: Path, folder: Path, python: Path | None = None) -> LocalServer:
    grpc, http, metrics = free_ports()
    return LocalServer(
        repository, grpc_port=grpc, http_port=http, metrics_port=metrics, run_dir=folder, python=python
    )


def stub_pythons(pid: int) -> set[str]:
    """The libpython versions loaded by the server's Python-backend stubs (its child processes)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) != pid:
                continue
            found |= set(re.findall(r"libpython(3\.\d+)", (stat.parent / "maps").read_text()))
        except (OSError, IndexError, ValueError):
            continue
    return found


@pytest.fixture(scope="module")
def reference(repository: Path, cases: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Served]:
    """Today's path: the models on this interpreter (3.11)."""
    with _server(repository, tmp_path_factory.mktemp("run311")) as server:
        assert stub_pythons(server.state.pid) == {f"{sys.version_info[0]}.{sys.version_info[1]}"}
        return _serve(server, cases)


@pytest.fixture(scope="module")
def server310(
    repository: Path, server_python: Path, tmp_path_factory: pytest.TempPathFactory, reference: dict
) -> Iterator[LocalServer]:
    """The same repository served with the models in the 3.10 venv (after the 3.11 server has stopped)."""
    with _server(repository, tmp_path_factory.mktemp("run310"), server_python) as server:
        yield server


def test_models_on_python310_answer_as_on_311(server310: LocalServer, reference: dict, cases: dict) -> None:
    assert stub_pythons(server310.state.pid) == {"3.10"}, "the stubs did not load libpython3.10"
    served = _serve(server310, cases)
    pancreas_seen = 0
    for name, ref in reference.items():
        got = served[name]
        assert np.array_equal(got.labels, ref.labels), (
            f"{name}: labels differ on 3.10 ({int((got.labels != ref.labels).sum())} voxels)"
        )
        assert np.array_equal(got.removed, ref.removed), f"{name}: removed candidates differ on 3.10"
        assert got.report["lesions"] == ref.report["lesions"], f"{name}: lesion reports differ on 3.10"
        pancreas_seen += int((ref.labels > 0).any())
    assert pancreas_seen >= 2, "the shipped model labelled nothing: the comparison would prove nothing"


@pytest.mark.parametrize("version", CLIENT_PYTHONS)
def test_client_installed_on_another_python_annotates_the_real_ct(
    server310: LocalServer, version: str, real_ct_dir: Path, reference: dict, tmp_path: Path
) -> None:
    """`pip install ./client` on 3.10 (Ubuntu 22.04) and 3.13 (numpy 2 there) writes what 3.11's client writes."""
    interpreter = find_python(version)
    if interpreter is None or not interpreter.is_file():
        pytest.skip(f"no CPython {version} here (set EANNO_PYTHON{version.replace('.', '')})")
    python, seconds = client_env(interpreter, version)
    print(f"\n{version} client env ready in {seconds:.1f} s")
    ct = real_ct_dir / "example_ct_sm.nii.gz"
    outputs = {}
    for tag, exe in (
        ("other", python.parent / "eanno-client"),
        ("311", Path(sys.executable).parent / "eanno-client"),
    ):
        out = tmp_path / tag
        proc = subprocess.run(
            [
                str(exe),
                "annotate",
                str(ct),
                "--out",
                str(out),
                "--url",
                server310.urls["grpc"],
                "--no-preview",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, f"eanno-client on {tag}: exit {proc.returncode}\n{proc.stderr[-3000:]}"
        [labels] = out.rglob("labels.nii.gz")
        outputs[tag] = nib.load(labels)
    img = nib.load(ct)
    for tag, lab in outputs.items():
        assert lab.shape == img.shape and np.allclose(lab.affine, img.affine), f"{tag}: not on the input grid"
    a, b = (np.asarray(outputs[t].dataobj) for t in ("other", "311"))
    assert np.array_equal(a, b), f"the {version} client wrote other labels than the 3.11 client"
    assert a.any(), "no label at all: nothing was compared"
    canonical = np.asarray(nib.as_closest_canonical(outputs["other"]).dataobj)
    assert np.array_equal(canonical, reference["real-ct"].labels), (
        "client labels differ from the server's answer"
    )
