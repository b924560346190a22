"""No Python-backend process outlives its server.

Triton starts one stub process per Python model instance. When tritonserver dies hard (SIGKILL, what the
OOM killer sends), nothing tells the stubs: they live on as orphans holding their memory (about 450 MB
each for the segmenter) and ignore SIGTERM. Each model therefore watches its parent from a daemon thread
and ends its own process as soon as the parent is gone (the stub is then re-parented: getppid changes).
"""

from __future__ import annotations

import os
import threading
import time

POLL_SECONDS = 1.0


def exit_with_parent(poll: float = POLL_SECONDS) -> threading.Thread:
    """Start the watcher: when this process's parent changes (the server died), exit at once."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll)
        os._exit(1)  # no cleanup: the server is gone, nothing here can be delivered any more

    thread = threading.Thread(target=watch, name="eanno-lifeline", daemon=True)
    thread.start()
    return thread
