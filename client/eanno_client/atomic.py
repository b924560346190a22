"""Write files under a temporary name in the same folder and rename when whole (no half-written outputs)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it (/proc), else set and restored."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a plain open() would give a new file: 0o666 less the umask (mkstemp's own is 0o600)."""
    return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """A temporary path beside `final` (same suffixes) that replaces `final` when the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(final.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".part{suffix}", dir=final.parent)
    # mkstemp makes the file 0600; outputs are read by colleagues from shared folders, so give the
    # temporary file the mode any other new file would get (the umask) before it becomes the output.
    os.fchmod(fd, file_mode())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_atomic(final: Path, write: Callable[[Path], object]) -> Path:
    """Call write(tmp) and rename tmp to `final`; returns `final`."""
    with atomic_path(final) as tmp:
        write(tmp)
    return final


def write_text_atomic(final: Path, text: str) -> Path:
    """Write text (UTF-8) atomically."""
    return write_atomic(final, lambda p: p.write_text(text, encoding="utf-8"))


def write_bytes_atomic(final: Path, data: bytes) -> Path:
    """Write bytes atomically."""
    return write_atomic(final, lambda p: p.write_bytes(data))
