"""What `ai-assets build` shows while it works.

On a terminal: a live `rich` bar of the build's steps done of total and, while a step embeds,
one of its chunks embedded of total with the rate and the time left; the build's own lines print
above the bars. Anywhere else (CI, a pipe, a log file): the same lines, and one progress line
per embedding step every few seconds, so a log shows the build moving without redrawing.

The embedding step reports through ``report_embedding``. ``ai-assets build`` runs every step in
its own process (Dagster's in-process executor), where ``BuildProgress`` is the current display;
a run launched from the UI has none, and its step's progress goes to the Dagster run log only.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from ai_assets.build_process import StepState
from ai_assets.core.progress import Rate, Throttle, progress_line

PLAIN_INTERVAL_SECONDS = 5.0
_FINISHED = {"ok", "failed", "skipped", "up to date"}

_current: BuildProgress | None = None  # the display of the build this process runs, if any


def report_embedding(label: str, done: int, total: int) -> None:
    """``done`` of ``total`` chunks of the step ``label`` (``minilm|airflow``) are embedded."""
    if _current is not None:
        _current.embedding(label, done, total)


class BuildProgress:
    """The build's display: a context manager; ``echo`` prints a line, ``on_step`` follows the steps."""

    def __init__(
        self,
        stream: TextIO | None = None,
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        interval: float = PLAIN_INTERVAL_SECONDS,
    ) -> None:
        self._stream = stream or sys.stdout
        self._live = self._stream.isatty() if live is None else live
        self._clock = clock
        self._interval = interval
        self._steps_total = 0
        self._steps_done = 0
        self._rates: dict[str, Rate] = {}
        self._throttles: dict[str, Throttle] = {}
        self._bar: Progress | None = None
        self._steps_task: TaskID | None = None
        self._embedding_tasks: dict[str, TaskID] = {}

    def __enter__(self) -> BuildProgress:
        global _current
        if self._live:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                console=Console(file=self._stream),
                transient=True,  # the bars leave the screen with the build; its lines stay
            )
            self._bar.start()
            self._steps_task = self._bar.add_task("build steps", total=None, rate="")
        _current = self
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        global _current
        _current = None
        if self._bar is not None:
            self._bar.stop()

    def echo(self, line: str) -> None:
        if self._bar is not None:
            self._bar.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            print(line, file=self._stream, flush=True)

    def on_step(self, state: StepState) -> None:
        if state.status == "pending":
            self._steps_total += 1
        elif state.status in _FINISHED:
            self._steps_done += 1
        if self._bar is not None and self._steps_task is not None:
            self._bar.update(self._steps_task, total=self._steps_total, completed=self._steps_done)

    def embedding(self, label: str, done: int, total: int) -> None:
        now = self._clock()
        rate = self._rates.setdefault(label, Rate(total=total, started=now))
        rate.total = total
        rate.update(done, now)
        finished = done >= total
        if self._bar is None:
            if self._throttles.setdefault(label, Throttle(self._interval)).due(now, final=finished):
                self.echo(f"    {progress_line(f'embedding {label}', rate, 'chunks')}")
            return
        task = self._embedding_tasks.get(label)
        if task is None:
            task = self._embedding_tasks[label] = self._bar.add_task(f"embedding {label}", total=total, rate="")
        self._bar.update(task, total=total, completed=done, rate=f"{rate.per_second:,.0f} chunks/s")
        if finished:
            self._bar.remove_task(task)
            del self._embedding_tasks[label]
