"""`ai-assets build` as two processes: a supervisor that owns the terminal, the signals and the
data dir's build lock, and a worker that executes the build's Dagster runs in-process.

Why two. Dagster executes an in-process run under its own SIGINT handler, and turns an interrupt
inside a step that has a retry policy into a retry (dagster-io/dagster#15026): Ctrl-C during
``chunk_embeddings`` re-ran the step, and the build went on to "build complete". A step waiting
for a pool slot does not look at interrupts at all, so a build stuck on a slot ignored SIGINT and
SIGTERM. The supervisor runs no Dagster step, so it always acts on a signal: it stops the worker
(SIGKILL; every write a step makes is atomic, a LanceDB commit or a renamed file, so a kill leaves
the data as the last completed write left it), then records through Dagster that the in-flight
runs were canceled and frees their concurrency slots. The worker dies with the supervisor (a
``kill -9`` of `ai-assets build` included); the next build then finds the runs it left behind
(``run_recovery``). A run of the build terminated from the Dagster UI stops the build the same way.

Two builds on one data dir never run at once: the second is refused (exit 75), or waits with
``--wait``. The lock is an advisory ``flock`` on ``<data dir>/.ai-assets-build.lock``, held by
the supervisor and inherited by the worker, so it is released whenever both are gone.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Literal

import dagster as dg

from ai_assets.core.documents.folders import SourcesUnavailable
from ai_assets.core.documents.object_folders import source_folders_at
from ai_assets.run_recovery import (
    LockedDataDir,
    describe_run,
    end_run,
    free_slots_of_finished_runs,
    recover,
    run_is_abandoned,
    unfinished_runs,
    waiting_for_slots,
)

Echo = Callable[[str], None]

LOCK_NAME = ".ai-assets-build.lock"
EXIT_BUSY = 75  # EX_TEMPFAIL (sysexits.h): another build holds the data dir; try again later
EXIT_CANCELED = 1
POLL_SECONDS = 1.0
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

StepStatus = Literal["pending", "running", "ok", "failed", "up to date", "skipped"]


@dataclass(frozen=True)
class StepState:
    """Where one step of a build stands; the worker reports every change to the supervisor."""

    number: int
    label: str
    status: StepStatus
    run_id: str | None = None


class BuildBusy(Exception):
    """Another `ai-assets build` holds the data dir."""


class Interrupted(Exception):
    """A signal asked the build to stop."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


class CanceledInDagster(Exception):
    """A run of this build was terminated from Dagster (the UI's Terminate sets it CANCELING)."""


def no_sources_message(error: Exception, data_dir: str | Path) -> str:
    return (
        f"{error} (data dir {data_dir}): run from the project folder, or set AI_ASSETS_DATA_DIR "
        "to a data dir that holds sources/<name>/ folders"
    )


def require_sources_folder(sources_location: str, data_dir: str) -> None:
    """Fail, naming the data dir, before anything is created there (no instance, no empty table)."""
    try:
        source_folders_at(sources_location).source_names()
    except SourcesUnavailable as error:
        raise ValueError(no_sources_message(error, data_dir)) from None


class InterruptGate:
    """Turns SIGINT, SIGTERM and SIGHUP into ``Interrupted`` in the main thread, but never in the
    middle of a call to the Dagster instance.

    Why: an exception raised by a signal handler inside a SQLite call can leave that connection's
    lock held by the frames of its traceback, and the cleanup that follows (recording the runs as
    canceled) then waits out SQLite's 30 s busy timeout. So a signal raises at once where the
    supervisor only waits (for the lock, for the worker), and is deferred to the end of ``held()``.
    """

    def __init__(self) -> None:
        self._depth = 0
        self._pending: int | None = None

    def handle(self, signum: int, _frame: object) -> None:
        ignore_signals()  # a second Ctrl-C must not cut short the recording of the first
        if self._depth:
            self._pending = signum
            return
        raise Interrupted(signum)

    @contextmanager
    def held(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if not self._depth and self._pending is not None:
            raise Interrupted(self._pending)


@contextmanager
def signals_interrupt() -> Iterator[InterruptGate]:
    """SIGINT, SIGTERM and SIGHUP raise ``Interrupted`` in the main thread while inside."""
    gate = InterruptGate()
    previous = {signum: signal.signal(signum, gate.handle) for signum in HANDLED_SIGNALS}
    try:
        yield gate
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def ignore_signals() -> None:
    """While the supervisor stops the worker and records the end of its runs."""
    for signum in HANDLED_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


@contextmanager
def build_lock(lock_dir: Path, data_dir: str, wait: bool, echo: Echo) -> Iterator[int]:
    """Hold the data dir's build lock (its file descriptor, for the worker to inherit).

    It lives in ``lock_dir`` (``Settings.machine_state_dir``): the data dir itself when local; for a
    bucket, this machine's state folder, so it serializes the builds of this machine only.
    """
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / LOCK_NAME
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 500, 0).decode(errors="replace").strip() or "holder unknown"
            if not wait:
                raise BuildBusy(
                    f"another ai-assets build is running on the data dir {data_dir} ({holder}); "
                    "this one did not start. Wait for it, or pass --wait to start when it ends"
                ) from None
            echo(f"another ai-assets build is running on the data dir {data_dir} ({holder}); waiting for it")
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n".encode(), 0)
        yield descriptor
    finally:
        os.close(descriptor)


def lock_holder(lock_dir: Path) -> str | None:
    """Who holds the data dir's build lock (a build is running), or None."""
    path = lock_dir / LOCK_NAME
    if not path.exists():
        return None
    descriptor = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.pread(descriptor, 500, 0).decode(errors="replace").strip() or "holder unknown"
    finally:
        os.close(descriptor)  # also releases the lock just taken
    return None


class StepLog:
    """The steps of the build as the worker reports them, read from its status pipe."""

    def __init__(self, stream: IO[str]) -> None:
        self.steps: dict[int, StepState] = {}
        self._stream = stream
        self._thread = threading.Thread(target=self._read, name="build-status", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stream:
            state = StepState(**json.loads(line))
            self.steps[state.number] = state

    def finish(self) -> None:
        self._thread.join(timeout=5)

    def running_run_ids(self) -> list[str]:
        return [state.run_id for state in list(self.steps.values()) if state.status == "running" and state.run_id]

    def summary(self) -> list[str]:
        """What finished, what failed, what was stopped and what never started."""
        states = [self.steps[number] for number in sorted(self.steps)]
        total = len(states)

        def listed(wanted: set[str]) -> str:
            return ", ".join(f"[{s.number}/{total}] {s.label}" for s in states if s.status in wanted) or "none"

        lines = [f"  finished: {listed({'ok', 'up to date'})}"]
        failed = listed({"failed", "skipped"})
        if failed != "none":
            lines.append(f"  failed or skipped: {failed}")
        stopped = [s for s in states if s.status == "running"]
        lines.append(
            "  stopped: "
            + (", ".join(f"[{s.number}/{total}] {s.label} (run {(s.run_id or '')[:8]})" for s in stopped) or "none")
        )
        lines.append(f"  not started: {listed({'pending'})}")
        return lines


class SlotWatch:
    """Says which run holds the slot a step of this build waits for (again when the holder
    changes), and ends a holder whose process is gone (a build killed meanwhile) so the step goes on."""

    def __init__(self, instance: dg.DagsterInstance, locked: LockedDataDir, echo: Echo) -> None:
        self._instance = instance
        self._locked = locked
        self._echo = echo
        self._told: dict[str, list[str]] = {}

    def poll(self, run_ids: list[str]) -> None:
        if not run_ids:
            return
        for pool, holders in waiting_for_slots(self._instance, run_ids).items():
            if holders and self._told.get(pool) != holders:
                self._told[pool] = holders
                described = "; ".join(describe_run(self._instance, holder) for holder in holders)
                self._echo(f"    waiting for a {pool} slot, held by {described}")
            if any(run_is_abandoned(self._instance, holder, self._locked) for holder in holders):
                recover(self._instance, self._echo, self._locked)


def die_with_supervisor(supervisor_pid: int) -> None:
    """In the worker: end when the supervisor ends, however it ends (kill -9 included)."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1  # prctl(2): the kernel sends this signal when the parent exits
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    else:
        def watch() -> None:
            while os.getppid() == supervisor_pid:
                time.sleep(POLL_SECONDS)
            os._exit(1)

        threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()
    if os.getppid() != supervisor_pid:  # it ended before the worker could ask
        os._exit(1)
    # Only the supervisor acts on Ctrl-C (the worker has its own process group; this covers a
    # signal sent to it directly between runs).
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def status_writer(descriptor: int) -> Callable[[StepState], None]:
    """In the worker: report each step's state to the supervisor, one JSON line each."""
    stream = os.fdopen(descriptor, "w", buffering=1, encoding="utf-8")

    def write(state: StepState) -> None:
        stream.write(json.dumps(asdict(state)) + "\n")

    return write


def supervise(
    instance: dg.DagsterInstance,
    worker_args: Sequence[str],
    lock_descriptor: int,
    locked: LockedDataDir,
    gate: InterruptGate,
    echo: Echo,
) -> int:
    """Run the build in a worker process and watch it; on a signal, stop it and cancel its runs."""
    build_id = locked.build_id
    status_read, status_write = os.pipe()
    command = [
        sys.executable, "-m", "ai_assets.cli", *worker_args,
        "--build-id", build_id, "--status-fd", str(status_write), "--supervisor-pid", str(os.getpid()),
    ]
    echo("starting the build's worker process (it loads Dagster and the asset graph) ...")
    worker = subprocess.Popen(
        command,
        pass_fds=(status_write, lock_descriptor),
        process_group=0,  # Ctrl-C at the terminal reaches the supervisor only
        env={**os.environ, "PYTHONUNBUFFERED": "1"},  # progress is printed as it happens, not lost in a kill
    )
    os.close(status_write)
    steps = StepLog(os.fdopen(status_read, encoding="utf-8"))
    slots = SlotWatch(instance, locked, echo)
    try:
        while True:
            try:
                worker.wait(timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                pass
            with gate.held():
                running = steps.running_run_ids()
                for run_id in running:
                    run = instance.get_run_by_id(run_id)
                    # Terminate in the UI sets CANCELING; its "force termination", CANCELED at once.
                    ending = (dg.DagsterRunStatus.CANCELING, dg.DagsterRunStatus.CANCELED)
                    if run is not None and run.status in ending:
                        raise CanceledInDagster(describe_run(instance, run_id))
                slots.poll(running)
    except (Interrupted, CanceledInDagster) as stop:
        ignore_signals()
        worker.kill()
        worker.wait()
        restore_terminal()
        steps.finish()
        if isinstance(stop, Interrupted):
            reason, code = f"interrupted by {stop}", 128 + stop.signum
        else:
            reason, code = f"{stop} was terminated in Dagster", EXIT_CANCELED
        echo(f"build stopped: {reason}")
        end_unfinished_runs(instance, build_id, canceled=True, reason=f"ai-assets build {reason}", echo=echo)
        free_slots_of_finished_runs(instance, echo)  # a run force-terminated in the UI ended holding its slot
        for line in steps.summary():
            echo(line)
        echo(
            "build canceled: what finished is kept (the index as its last finished step left it, and vectors "
            "already embedded in the journal); run `ai-assets build` again to resume"
        )
        return code
    steps.finish()
    code = worker.returncode
    if code < 0:
        restore_terminal()
        reason = f"the build worker (pid {worker.pid}) was killed by {signal.Signals(-code).name}"
        echo(f"build failed: {reason}")
        end_unfinished_runs(instance, build_id, canceled=False, reason=reason, echo=echo)
        for line in steps.summary():
            echo(line)
        return 1
    # A worker that ended on its own leaves no run behind; if it did, say so rather than leave it STARTED.
    end_unfinished_runs(
        instance, build_id, canceled=False, reason=f"the build worker (pid {worker.pid}) exited with {code}", echo=echo
    )
    return code


def restore_terminal() -> None:
    """Show the cursor again: a worker killed while its progress bar was live left it hidden."""
    if sys.stdout.isatty():
        sys.stdout.write("\x1b[?25h")
        sys.stdout.flush()


def end_unfinished_runs(instance: dg.DagsterInstance, build_id: str, canceled: bool, reason: str, echo: Echo) -> None:
    """Record through Dagster the end of every run of this build still unfinished; free its slots."""
    for run in unfinished_runs(instance, build_id):
        description = describe_run(instance, run.run_id)
        freed = end_run(instance, run, canceled=canceled, message=f"{reason}.")
        echo(f"  {description}: marked {'canceled' if canceled else 'failed'} in Dagster, freed {freed} slot(s)")
