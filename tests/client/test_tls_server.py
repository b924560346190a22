"""gRPC over TLS end to end: a throw-away CA made here with openssl, tritonserver's --grpc-use-ssl options,
and eanno-client's --root-cert (server authentication) and --client-cert/--client-key (mutual TLS)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from eanno_client.cli import main

from .conftest import save_nifti
from .faults_helpers import check_outputs_whole, limited_repository, start_server
from .server_model import lesion_phantom

pytestmark = [
    pytest.mark.server,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
]


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(folder: Path) -> dict[str, Path]:
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate, all signed by the CA."""
    folder.mkdir(parents=True, exist_ok=True)
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=eanno test CA",
        cwd=folder,
    )
    for name, ext in (
        ("server", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        (folder / f"{name}.ext").write_text(ext + "\n")
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={'localhost' if name == 'server' else 'eanno client'}",
            cwd=folder,
        )
        openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "1",
            "-extfile",
            f"{name}.ext",
            cwd=folder,
        )
    # a second CA that signed nothing here: trusting it must not verify the server
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "other.key",
        "-out",
        "other.pem",
        "-days",
        "1",
        "-subj",
        "/CN=another CA",
        cwd=folder,
    )
    return {
        n: folder / f"{n}"
        for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key", "other.pem")
    }


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """A mutual-TLS server (client certificates required) on 127.0.0.1; yields (url as localhost, pki)."""
    base = tmp_path_factory.mktemp("tls")
    pki = make_pki(base / "pki")
    args = [
        "--grpc-use-ssl=true",
        "--grpc-use-ssl-mutual=true",
        f"--grpc-server-cert={pki['server.pem']}",
        f"--grpc-server-key={pki['server.key']}",
        f"--grpc-root-cert={pki['ca.pem']}",
    ]
    srv = start_server(limited_repository(base / "repo"), base / "run", extra_args=args)
    try:
        yield f"localhost:{srv.ports['grpc']}", pki
    finally:
        srv.stop()


def invoke(*args):
    return CliRunner().invoke(main, [*map(str, args)])


def test_annotate_over_mutual_tls(tls, tmp_path) -> None:
    url, pki = tls
    hu, affine, _ = lesion_phantom("LPS")
    src = save_nifti(tmp_path / "case.nii.gz", hu, affine)
    r = invoke(
        "annotate",
        src,
        "--out",
        tmp_path / "out",
        "--url",
        url,
        "--root-cert",
        pki["ca.pem"],
        "--client-cert",
        pki["client.pem"],
        "--client-key",
        pki["client.key"],
        "--json",
        "--no-preview",
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["done"] == 1 and check_outputs_whole(tmp_path / "out") == 1
    report = json.loads((tmp_path / "out" / "case" / "report.json").read_text())
    assert [x["class"] for x in report["lesions"] if x["decision"] == "kept"] == ["pancreatic_pdac"] * 2


@pytest.mark.parametrize("case", ["plaintext", "no_client_cert", "untrusted_ca"])
def test_tls_refusals_are_clear(tls, case, tmp_path) -> None:
    url, pki = tls
    args = {
        "plaintext": [],
        "no_client_cert": ["--root-cert", pki["ca.pem"]],
        "untrusted_ca": [
            "--root-cert",
            pki["other.pem"],
            "--client-cert",
            pki["client.pem"],
            "--client-key",
            pki["client.key"],
        ],
    }[case]
    r = invoke("health", "--url", url, "--retries", "0", "--timeout", "5", *args)
    assert r.exit_code == 3, r.output
    words = {
        "plaintext": "is it a TLS server (give --root-cert PEM)",
        "no_client_cert": "does it require a client certificate (--client-cert and --client-key)?",
        "untrusted_ca": "not signed by the --root-cert given (CERTIFICATE_VERIFY_FAILED)",
    }[case]
    assert words in r.output and url in r.output and "Traceback" not in r.output, r.output
    # the same words from the readiness check before a batch
    hu, affine, _ = lesion_phantom("RAS")
    src = save_nifti(tmp_path / "case.nii.gz", hu, affine)
    r = invoke("annotate", src, "--out", tmp_path / "out", "--url", url, *args)
    assert r.exit_code == 3 and words in r.output and not (tmp_path / "out").exists(), r.output


def test_health_over_tls(tls) -> None:
    url, pki = tls
    r = invoke(
        "health",
        "--url",
        url,
        "--root-cert",
        pki["ca.pem"],
        "--client-cert",
        pki["client.pem"],
        "--client-key",
        pki["client.key"],
        "--json",
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["ensemble_ready"] is True
