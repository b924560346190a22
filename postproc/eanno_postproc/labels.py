"""The label map, for callers of eanno_postproc.labels: it lives in eanno_contracts.labels (CONTRACTS.md "Labels").

New code imports eanno_contracts.labels; this name stays while work in flight still uses it.
"""

from eanno_contracts.labels import *  # noqa: F403  (the whole table, spelled out once there)
