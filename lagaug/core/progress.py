"""Progress reporting with rich: one bar per long stage, with what runs and an ETA.

Code that does long work asks ``progress.task(description, total)`` for a context manager and
calls ``advance()`` on it. ``Progress(quiet=True)`` reports nothing (for scripts and tests).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


class Task:
    """A handle on one running bar."""

    def __init__(self, bar=None, task_id=None):
        self._bar = bar
        self._id = task_id

    def advance(self, n: float = 1, status: str | None = None) -> None:
        if self._bar is not None:
            fields = {} if status is None else {"status": status}
            self._bar.update(self._id, advance=n, **fields)

    def set_status(self, status: str) -> None:
        if self._bar is not None:
            self._bar.update(self._id, status=status)


class Progress:
    """Rich progress bars, or nothing when ``quiet``."""

    def __init__(self, quiet: bool = False, console=None):
        self.quiet = quiet
        self.console = console
        self._bar = None
        self._depth = 0

    def _ensure_bar(self):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress as RichProgress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        if self._bar is None:
            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._bar.start()
        return self._bar

    @contextmanager
    def task(self, description: str, total: float | None) -> Iterator[Task]:
        if self.quiet:
            yield Task()
            return
        bar = self._ensure_bar()
        self._depth += 1
        task_id = bar.add_task(description, total=total, status="")
        try:
            yield Task(bar, task_id)
        finally:
            bar.update(task_id, visible=True)
            self._depth -= 1
            if self._depth == 0:
                bar.stop()
                self._bar = None

    def log(self, message: str) -> None:
        """A line above the bars (or nothing when quiet)."""
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.console.print(message)
        else:
            from rich.console import Console

            (self.console or Console(stderr=True)).print(message)
