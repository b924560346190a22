"""Admission: the window model refuses work beyond the server's capacity with a retryable "server busy".

Triton's own refusing queue policy (`max_queue_size`) needs the dynamic batcher, i.e. a batch dimension on
the window's inputs (a contract change, Triton issue #6368). This does the same with today's contract: before
any large allocation the window takes slots for the request, ceil(voxels / unit_voxels) of them (one slot is
one full-size-equivalent request, 512 x 512 x 300 by default; a volume larger than every slot together takes
them all), and refuses with BUSY_MESSAGE when they are not free or when the machine's available memory is
below a reserve. The client retries that refusal with jittered back-off (eanno_client.connection).

Slots are files locked with flock(2) in a folder shared by the window's instances (each is its own process).
The kernel drops a lock when its file is closed or its process dies, so a slot cannot leak: not when a
request fails, not when a stub is killed. Nothing is counted by hand.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from eanno_contracts.admission import BUSY_MESSAGE
from eanno_contracts.errors import EannoError, ExitCode

FULL_SIZE_VOXELS = 512 * 512 * 300  # one slot: the full-size case every memory figure is measured on


class Busy(EannoError):
    """No room for this request now; the message starts with BUSY_MESSAGE and says why."""

    exit_code = ExitCode.UNREACHABLE  # as the client sees it when it gives up: the server did not serve it


def available_mb(meminfo: Path = Path("/proc/meminfo"), cgroup: Path = Path("/sys/fs/cgroup")) -> float:
    """Memory this process's server could still use (MiB): MemAvailable, or less where a cgroup limit binds."""
    avail = math.inf
    with suppress(OSError, ValueError):
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) / 1024
    # cgroup v2 (memory.max / memory.current), else v1 (memory/memory.limit_in_bytes / usage_in_bytes)
    for limit_file, usage_file in (
        ("memory.max", "memory.current"),
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes"),
    ):
        with suppress(OSError, ValueError):
            limit = (cgroup / limit_file).read_text().strip()
            if limit != "max" and int(limit) < 2**60:  # v1 writes a huge number for "no limit"
                usage = int((cgroup / usage_file).read_text().strip())
                avail = min(avail, (int(limit) - usage) / 2**20)
                break
    return avail


def default_folder(model_dir: str) -> Path:
    """The slot folder of one repository's window model: every instance of it (and every server serving the
    same repository on this machine, which shares its memory) counts against the same slots."""
    key = hashlib.sha256(os.path.realpath(model_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"eanno-admission-{key}"


@dataclass(frozen=True)
class Admission:
    """How much the window takes on at once: `slots` full-size equivalents, and a memory reserve."""

    slots: int
    folder: Path
    unit_voxels: int = FULL_SIZE_VOXELS
    reserve_mb: float = 0.0  # refuse while the machine has less than this available

    def __post_init__(self) -> None:
        if self.slots < 1 or self.unit_voxels < 1 or self.reserve_mb < 0:
            raise ValueError(
                f"admission needs slots >= 1, unit_voxels >= 1, reserve_mb >= 0; got {self.slots}, "
                f"{self.unit_voxels}, {self.reserve_mb}"
            )

    def need(self, voxels: int) -> int:
        """Slots a request of `voxels` takes (at least 1, at most all)."""
        return max(1, min(self.slots, math.ceil(voxels / self.unit_voxels)))

    @contextmanager
    def admit(self, voxels: int) -> Iterator[int]:
        """Hold the request's slots while the body runs (yields how many); Busy when there is no room."""
        need = self.need(voxels)
        avail = available_mb()
        if avail < self.reserve_mb:
            raise Busy(
                f"{BUSY_MESSAGE}: {avail:.0f} MiB of memory available, below the reserve of "
                f"{self.reserve_mb:.0f} MiB; retry later"
            )
        if not self.folder.is_dir():
            self.folder.mkdir(parents=True, exist_ok=True)
            with suppress(OSError):  # like /tmp: servers of other users on this machine share the slots too
                self.folder.chmod(0o1777)
        held: list[int] = []
        try:
            for i in range(self.slots):
                if len(held) == need:
                    break
                # read-only is enough for flock, and opens another user's slot file
                fd = os.open(self.folder / f"slot-{i}", os.O_RDONLY | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                held.append(fd)
            if len(held) < need:
                raise Busy(
                    f"{BUSY_MESSAGE}: this request needs {need} of {self.slots} slots "
                    f"(full-size equivalents of {self.unit_voxels} voxels), {len(held)} free; retry later"
                )
            yield need
        finally:
            for fd in held:
                os.close(fd)  # closing drops the lock
