"""The server's compact answer (region first) -> whole-volume label maps, exactly as the server means them.

The answer carries `labels_z` and `removed_z` (zlib streams of the uint8 maps of a box of the volume, C
order; `box`: start, stop per axis) and the removed candidates outside the box as blocks
(`removed_outside`: class, start0, stop0, start1, stop1, start2, stop2). Everything else is background.
CONTRACTS.md ("Ensemble tensors") documents the tensors.
"""

from __future__ import annotations

import zlib

import numpy as np

from .errors import EannoError

# zlib level 1: label maps shrink about 100x in tens of milliseconds; higher levels gain little on them.
LEVEL = 1


class AnswerError(EannoError, ValueError):
    """The server's answer does not fit the volume that was sent."""


def pack(array: np.ndarray) -> bytes:
    """A uint8 map as a zlib stream of its C-order bytes."""
    return zlib.compress(np.ascontiguousarray(array, dtype=np.uint8).tobytes(), LEVEL)


def unpack(data: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """The uint8 map of `shape` from `pack`'s stream; AnswerError when it does not fit."""
    try:
        raw = zlib.decompress(data)
    except zlib.error as e:
        raise AnswerError(f"the server's compressed map is damaged ({e})") from e
    if len(raw) != int(np.prod(shape)):
        raise AnswerError(
            f"the server's map holds {len(raw)} voxels, the box {list(shape)} needs {int(np.prod(shape))}"
        )
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape)


def box_shape(box: np.ndarray) -> tuple[int, int, int]:
    """The (stop - start) sizes of a (2, 3) box."""
    b = np.asarray(box, dtype=np.int64).reshape(2, 3)
    return tuple(int(max(0, y - x)) for x, y in zip(b[0], b[1], strict=True))  # type: ignore[return-value]


def full_size(
    shape: tuple[int, ...], box: np.ndarray, inside: np.ndarray, blocks: np.ndarray | None = None
) -> np.ndarray:
    """A whole-volume uint8 map from the box part (and the outside blocks); 0 elsewhere."""
    box = np.asarray(box, dtype=np.int64).reshape(2, 3)
    if np.any(box[0] < 0) or np.any(box[1] > np.asarray(shape)) or np.any(box[1] < box[0]):
        raise AnswerError(f"the server's box {box.tolist()} does not lie inside the volume {list(shape)}")
    expected = tuple(int(b - a) for a, b in zip(box[0], box[1], strict=True))
    if inside.shape != expected:
        raise AnswerError(
            f"the server returned a map of shape {list(inside.shape)} for a box of {list(expected)}"
        )
    out = np.zeros(shape, dtype=np.uint8)
    if inside.size:
        out[tuple(slice(int(a), int(b)) for a, b in zip(box[0], box[1], strict=True))] = inside
    if blocks is not None:
        for c, a0, b0, a1, b1, a2, b2 in np.asarray(blocks, dtype=np.int64).reshape(-1, 7).tolist():
            out[a0:b0, a1:b1, a2:b2] = c
    return out
