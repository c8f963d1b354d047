"""Progress of long work as numbers and plain lines: what a log or a non-terminal shows."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Rate:
    """Items done of a total since ``started`` (seconds on a monotonic clock): rate and time left."""

    total: int
    started: float
    done: int = 0
    now: float = field(default=0.0)

    def update(self, done: int, now: float) -> None:
        self.done, self.now = done, now

    @property
    def per_second(self) -> float:
        elapsed = self.now - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    @property
    def seconds_left(self) -> float | None:
        rate = self.per_second
        return (self.total - self.done) / rate if rate > 0 else None


class Throttle:
    """Whether a progress report is due: the first, the last, and one per ``interval`` seconds."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: float | None = None

    def due(self, now: float, final: bool = False) -> bool:
        if final or self._last is None or now - self._last >= self.interval:
            self._last = now
            return True
        return False


def progress_line(label: str, rate: Rate, unit: str) -> str:
    """``embedding minilm|airflow: 1,200/4,000 chunks, 310/s, ETA 9 s`` (``done`` once finished)."""
    line = f"{label}: {rate.done:,}/{rate.total:,} {unit}, {rate.per_second:,.0f}/s"
    if rate.done >= rate.total:
        return f"{line}, done"
    left = rate.seconds_left
    return f"{line}, ETA {left:,.0f} s" if left is not None else line
