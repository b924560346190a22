"""The client's one dynamic dependency: eanno-contracts from the sibling contracts/ folder of this repository.

pyproject.toml cannot say "the folder beside me" (PEP 508 needs an absolute URL), so this computes it;
`pip install ./client` then installs contracts/ with it. Outside a checkout (no sibling folder) the
dependency is by name, to be satisfied by an index or an earlier `pip install ./contracts`; so it is with
EANNO_CONTRACTS_BY_NAME=1, which `make setup` sets: pip refuses an editable ./contracts and a URL to the
same folder in one environment.
"""

import os
from pathlib import Path

from setuptools import setup

SIBLING = Path(__file__).resolve().parent.parent / "contracts"
CONTRACTS = (
    f"eanno-contracts @ {SIBLING.as_uri()}"
    if ((SIBLING / "pyproject.toml").is_file() and not os.environ.get("EANNO_CONTRACTS_BY_NAME"))
    else "eanno-contracts"
)

setup(
    install_requires=[
        # numpy < 2 is the server stub's constraint, not the client's; it has no wheels for 3.13+, so there
        # the client takes numpy 2 (tests/docker/test_image_parity.py runs it on 3.10 and 3.13).
        CONTRACTS,
        "numpy<2; python_version < '3.13'",
        "numpy>=2.1; python_version >= '3.13'",
        "nibabel>=5",
        "isal>=1.6",
        "click>=8",
        "tritonclient[grpc]",
        "rich",
        "scipy",
        "connected-components-3d",
        "prometheus-client>=0.17",
        "PyYAML>=6",
    ]
)
