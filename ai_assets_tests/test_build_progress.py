"""What `ai-assets build` shows while it works: plain lines off a terminal, live bars on one."""

from __future__ import annotations

import io
import os
import pty
import select

from ai_assets.build_process import StepState
from ai_assets.build_progress import BuildProgress, report_embedding


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_off_a_terminal_progress_is_a_line_every_few_seconds_ending_at_the_total() -> None:
    stream, clock = io.StringIO(), Clock()
    with BuildProgress(stream=stream, live=False, clock=clock, interval=5.0) as progress:
        progress.echo("[2/3] embed_source_job minilm|alpha (after ingest_source_job alpha) ...")
        for done, at in [(0, 100.0), (256, 102.0), (512, 104.0), (768, 106.0), (1000, 107.0)]:
            clock.now = at
            report_embedding("minilm|alpha", done, 1000)
    lines = stream.getvalue().splitlines()
    assert lines == [
        "[2/3] embed_source_job minilm|alpha (after ingest_source_job alpha) ...",
        "    embedding minilm|alpha: 0/1,000 chunks, 0/s",
        "    embedding minilm|alpha: 768/1,000 chunks, 128/s, ETA 2 s",  # 5 s after the first line
        "    embedding minilm|alpha: 1,000/1,000 chunks, 143/s, done",  # the last one, whatever the time
    ]
    report_embedding("minilm|alpha", 1, 1000)  # no build displayed any more: nothing, no error
    assert stream.getvalue().splitlines() == lines


def test_on_a_terminal_the_bars_show_steps_and_chunks_with_a_rate() -> None:
    master, slave = pty.openpty()
    terminal = os.fdopen(slave, "w")
    clock = Clock()
    with BuildProgress(stream=terminal, clock=clock) as progress:
        for number in (1, 2):
            progress.on_step(StepState(number, f"step {number}", "pending"))
        progress.on_step(StepState(1, "step 1", "ok"))
        report_embedding("minilm|alpha", 0, 1000)
        clock.now += 2.0
        report_embedding("minilm|alpha", 400, 1000)
        progress._bar.refresh()  # type: ignore[union-attr]  # the bar redraws on its own timer too
        progress.echo("a line of the build")
    terminal.flush()
    shown = b""
    while select.select([master], [], [], 0.5)[0]:
        chunk = os.read(master, 65536)
        if not chunk:
            break
        shown += chunk
    terminal.close()
    os.close(master)
    text = shown.decode(errors="replace")
    assert "build steps" in text and "1/2" in text
    assert "embedding minilm|alpha" in text and "400/1000" in text and "200 chunks/s" in text
    assert "a line of the build" in text
