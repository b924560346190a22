"""The batch progress bar (rich, on stderr): cases done, cases/s and ETA."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class CasesPerSecond(ProgressColumn):
    """Throughput in cases per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- cases/s" if speed is None else f"{speed:.2f} cases/s", style="progress.data.speed")


@contextlib.contextmanager
def batch_progress(total: int, enabled: bool = True) -> Iterator[Callable[[], None]]:
    """A context yielding advance(): one call per finished case; silent when disabled or not a terminal."""
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield lambda: None
        return
    columns = (TextColumn("annotating"), BarColumn(), MofNCompleteColumn(), CasesPerSecond(),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("cases", total=total)
        yield lambda: progress.advance(task)
