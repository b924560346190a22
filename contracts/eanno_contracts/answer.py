"""The server's compact answer (region first) -> whole-volume label maps, exactly as the server means them.

The answer carries `labels` and `removed` for a box of the volume (`box`: start, stop per axis) and the
removed candidates outside it as blocks (`removed_outside`: class, start0, stop0, start1, stop1, start2,
stop2). Everything else is background. CONTRACTS.md ("Ensemble tensors") documents the tensors.
"""

from __future__ import annotations

import numpy as np

from .errors import EannoError


class AnswerError(EannoError, ValueError):
    """The server's answer does not fit the volume that was sent."""


def full_size(shape: tuple[int, ...], box: np.ndarray, inside: np.ndarray, blocks: np.ndarray | None = None
              ) -> np.ndarray:
    """A whole-volume uint8 map from the box part (and the outside blocks); 0 elsewhere."""
    box = np.asarray(box, dtype=np.int64).reshape(2, 3)
    if np.any(box[0] < 0) or np.any(box[1] > np.asarray(shape)) or np.any(box[1] < box[0]):
        raise AnswerError(f"the server's box {box.tolist()} does not lie inside the volume {list(shape)}")
    expected = tuple(int(b - a) for a, b in zip(box[0], box[1], strict=True))
    if inside.shape != expected:
        raise AnswerError(f"the server returned a map of shape {list(inside.shape)} for a box of {list(expected)}")
    out = np.zeros(shape, dtype=np.uint8)
    if inside.size:
        out[tuple(slice(int(a), int(b)) for a, b in zip(box[0], box[1], strict=True))] = inside
    if blocks is not None:
        for c, a0, b0, a1, b1, a2, b2 in np.asarray(blocks, dtype=np.int64).reshape(-1, 7).tolist():
            out[a0:b0, a1:b1, a2:b2] = c
    return out
