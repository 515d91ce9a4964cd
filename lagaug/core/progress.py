"""Progress reporting: one bar per long stage on a terminal, plain lines in a log.

Code that does long work asks ``progress.task(description, total)`` for a context manager and
calls ``advance()`` on it. ``Progress(quiet=True)`` reports nothing (for scripts and tests).

On a terminal each stage is a rich bar with what runs and an ETA. When the output is not a
terminal (stderr redirected to a file, a batch scheduler's log), a bar would show nothing until its
stage ends; instead each stage writes a plain line when it starts, then every
``LAGAUG_PROGRESS_INTERVAL`` seconds (default 30) or every 10% of the stage, whichever comes
first, and when it ends::

    iteration 0: ensemble: 5 x test_resnet: 60/150 (40%), loss 0.412 · 0:02:10 elapsed · ETA 0:03:15
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Iterator

#: environment variable: seconds between two progress lines in a log
INTERVAL_ENV = "LAGAUG_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 30.0
#: a line also every this share of a stage
STEP_SHARE = 0.1


def clock_text(seconds: float) -> str:
    """``0:02:10``."""
    s = int(max(seconds, 0))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def log_interval() -> float:
    """The seconds between progress lines in a log (``LAGAUG_PROGRESS_INTERVAL``, default 30)."""
    raw = os.environ.get(INTERVAL_ENV, "").strip()
    if not raw:
        return DEFAULT_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        from lagaug.core.errors import ConfigError

        raise ConfigError(f"{INTERVAL_ENV}={raw!r}: give the seconds between progress lines in a log, "
                          "a number of at least 0 (default 30)")
    return value


class LineReport:
    """One stage as plain lines: at its start, then every ``interval`` seconds or every
    :data:`STEP_SHARE` of ``total`` (checked whenever it advances), and at its end."""

    def __init__(self, write, description: str, total: float | None, interval: float, clock=time.monotonic):
        self.write, self.description, self.total, self.interval, self.clock = write, description, total, interval, clock
        self.done = 0.0
        self.status = ""
        self.start = self.last = clock()
        self.next_share = STEP_SHARE
        self.write(f"{description}: started" + (f", 0/{total:g}" if total else ""))

    def advance(self, n: float = 1, status: str | None = None) -> None:
        self.done += n
        if status is not None:
            self.status = status
        now = self.clock()
        share = self.done / self.total if self.total else 0.0
        if self.total and share >= 1:
            return  # the stage's last line is written when it ends
        if now - self.last >= self.interval or (self.total and share >= self.next_share):
            self.write(self.line(now))
            self.last = now
            if self.total:
                self.next_share = (int(share / STEP_SHARE + 1e-9) + 1) * STEP_SHARE

    def line(self, now: float, finished: bool = False) -> str:
        elapsed = now - self.start
        text = f"{self.description}: "
        if self.total:
            text += f"{self.done:g}/{self.total:g} ({100 * min(self.done / self.total, 1):.0f}%)"
        else:
            text += f"{self.done:g} done"
        if self.status:
            text += f", {self.status}"
        if finished:
            return text + f" · finished in {clock_text(elapsed)}"
        text += f" · {clock_text(elapsed)} elapsed"
        if self.total and self.done > 0:
            text += f" · ETA {clock_text(elapsed / self.done * max(self.total - self.done, 0))}"
        return text

    def finish(self) -> None:
        self.write(self.line(self.clock(), finished=True))


class Task:
    """A handle on one running stage: a rich bar, a :class:`LineReport`, or nothing."""

    def __init__(self, bar=None, task_id=None, lines: LineReport | None = None):
        self._bar = bar
        self._id = task_id
        self._lines = lines

    def advance(self, n: float = 1, status: str | None = None) -> None:
        if self._bar is not None:
            fields = {} if status is None else {"status": status}
            self._bar.update(self._id, advance=n, **fields)
        if self._lines is not None:
            self._lines.advance(n, status)

    def set_status(self, status: str) -> None:
        if self._bar is not None:
            self._bar.update(self._id, status=status)
        if self._lines is not None:
            self._lines.status = status


class Progress:
    """Rich progress bars on a terminal, plain progress lines otherwise, or nothing when ``quiet``."""

    def __init__(self, quiet: bool = False, console=None):
        self.quiet = quiet
        self.console = console
        self._bar = None
        self._depth = 0
        self.interval = DEFAULT_INTERVAL if quiet else log_interval()

    def _console(self):
        if self.console is None:
            from rich.console import Console

            self.console = Console(stderr=True)
        return self.console

    def plain(self) -> bool:
        """Whether progress goes to something other than a terminal (then: plain lines)."""
        return not self._console().is_terminal

    def _ensure_bar(self):
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

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

    def _write(self, text: str) -> None:
        self._console().print(text, markup=False, highlight=False, soft_wrap=True)

    @contextmanager
    def task(self, description: str, total: float | None) -> Iterator[Task]:
        if self.quiet:
            yield Task()
            return
        if self.plain():
            lines = LineReport(self._write, description, total, self.interval)
            yield Task(lines=lines)
            lines.finish()
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
            self._console().print(message)
