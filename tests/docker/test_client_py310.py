"""The client's own test suite on CPython 3.10, the oldest workstation Python (client/README.md: 3.10 to 3.13).

tests/client runs in a second pytest under 3.10, in a venv pinned by requirements/constraints.txt's 3.10
markers (tests/docker/py310.py: built once, rebuilt only when a package's dependencies change; editable, so
it runs this tree's code). Its local servers run on 3.10 too (the wheel's `python_backend_stubs/3.10`, as in
the image), so the client under test and the server's Python side are both 3.10.

`make test` runs the tests that need no server (readers, orientation, outputs, batches, bad input, DICOM,
review, ranking, loadtest statistics, fuzz smoke: almost all of the client's logic) plus those marked
`py310`: tests/client/test_server.py, annotate end to end against a real server (health, orientations,
DICOM, overrides, --continue). About 45 s on a loaded machine. `make test-client-py310` runs all of
tests/client (faults, TLS, endpoints, access, soak: several minutes more). Either way the 3.10 run must
collect every test the 3.11 run collects, so an import that fails on 3.10 fails here instead of vanishing.
Skips with the reason where no CPython 3.10 exists.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .py310 import REPO, client_test_env, require_python310

pytestmark = [pytest.mark.slow, pytest.mark.server]
SUBSET = ["tests/client", "-m", "not server or py310"]
FULL = ["tests/client"]


@pytest.fixture(scope="module")
def python310_tests() -> Path:
    """The 3.10 test venv's python, checked to be 3.10 with this tree's client; or a skip saying why not."""
    found = require_python310("the client's suite cannot run on the oldest workstation Python")
    python, seconds = client_test_env(found)
    print(f"\n3.10 client test env ready in {seconds:.1f} s: {python}")
    code = "import sys, eanno_client; print('%d.%d' % sys.version_info[:2]); print(eanno_client.__file__)"
    version, where = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert version == "3.10", version
    assert Path(where).resolve().is_relative_to(REPO / "client"), f"{where}: not this tree's client"
    return python


def collected(python: str, args: list[str]) -> set[str]:
    """Test ids pytest collects with this python."""
    proc = subprocess.run(
        [python, "-m", "pytest", *args, "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {line.strip() for line in proc.stdout.splitlines() if "::" in line}


def junit_results(path: Path) -> dict[str, str]:
    """test id -> 'passed', 'skipped: reason', 'failure' or 'error', from pytest's junit XML."""
    results = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag == "skipped":
                outcome = f"skipped: {child.get('message', '')}"
            elif child.tag in ("failure", "error"):
                outcome = child.tag
        results[f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"] = outcome
    return results


def run_on_310(python: Path, args: list[str], tmp_path: Path) -> dict[str, str]:
    """pytest on args with the 3.10 venv; its per-test results (the output's tail on failure)."""
    libdir = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()
    # the servers' 3.10 stub loads libpython3.10.so, which pyenv keeps in its own lib dir (not on ld's path)
    env = {
        **os.environ,
        "LD_LIBRARY_PATH": os.pathsep.join(p for p in (libdir, os.environ.get("LD_LIBRARY_PATH")) if p),
    }
    xml = tmp_path / "junit.xml"
    proc = subprocess.run(
        [str(python), "-m", "pytest", *args, "-q", "-p", "no:cacheprovider", f"--junitxml={xml}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=3000,
        env=env,
    )
    print("3.10:", proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-2000:])
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    return junit_results(xml)


def check_same_tests(results: dict[str, str], args: list[str]) -> None:
    """3.10 ran every test 3.11 collects, and each passed or skipped for a reason that is not a 3.10 gap."""
    expected = collected(sys.executable, args)
    assert set(results) == expected, (
        "missing on 3.10",
        sorted(expected - set(results))[:20],
        "only on 3.10",
        sorted(set(results) - expected)[:20],
    )
    bad = {k: v for k, v in results.items() if v in ("failure", "error")}
    assert not bad, bad
    skipped = {k: v for k, v in results.items() if v != "passed"}
    print(f"3.10: {len(results) - len(skipped)} passed, {len(skipped)} skipped {skipped}")
    # a skip on 3.10 only (a package missing from the venv) would hide a test: no import-error skips
    assert not [v for v in skipped.values() if "No module named" in v or "could not import" in v], skipped


def test_client_suite_on_python310(python310_tests: Path, tmp_path: Path) -> None:
    results = run_on_310(python310_tests, SUBSET, tmp_path)
    check_same_tests(results, SUBSET)
    assert any(k.startswith("tests/client/test_server.py::") and v == "passed" for k, v in results.items())


@pytest.mark.skipif(
    os.environ.get("EANNO_PY310_FULL") != "1",
    reason="the whole client suite on 3.10 takes minutes: `make test-client-py310`",
)
def test_whole_client_suite_on_python310(python310_tests: Path, tmp_path: Path) -> None:
    check_same_tests(run_on_310(python310_tests, FULL, tmp_path), FULL)
