"""The server's "busy" refusal: how the window model says it is over capacity and the client recognises it.

The window model answers a request it has no room for with Triton's UNAVAILABLE status and a message that
starts with BUSY_MESSAGE (CONTRACTS.md "Admission"); the client retries exactly those with jittered
exponential back-off. Other UNAVAILABLE answers (server down, protocol restricted) are handled apart.
"""

from __future__ import annotations

BUSY_MESSAGE = "server busy"


def is_busy(message: str) -> bool:
    """Whether a server message is the window model's over-capacity refusal (retry later, nothing is wrong)."""
    return BUSY_MESSAGE in message
