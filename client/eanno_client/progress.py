"""The batch progress bar (rich, on stderr): cases done, cases/s and ETA."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import click
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
def batch_progress(total: int, enabled: bool = True) -> Iterator[Callable[[str | None, bool], None]]:
    """A context yielding step(line, is_error): one call per finished case, printing its line (if any).

    With a terminal the line is printed above the live bar (through rich, so the bar is redrawn below
    it); otherwise errors go to stderr and the rest to stdout, and there is no bar.
    """
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:

        def plain(line: str | None, is_error: bool) -> None:
            if line is not None:
                click.echo(line, err=is_error)

        yield plain
        return
    columns = (
        TextColumn("annotating"),
        BarColumn(),
        MofNCompleteColumn(),
        CasesPerSecond(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("cases", total=total)

        def step(line: str | None, is_error: bool) -> None:
            if line is not None:
                progress.console.print(line, markup=False, highlight=False, style="red" if is_error else None)
            progress.advance(task)

        yield step
