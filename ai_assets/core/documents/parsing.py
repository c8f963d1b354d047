"""Parsing files in worker processes, each file within a time limit.

Parsers are third-party code fed untrusted files: one may loop, exhaust the stack, or take the
process down. Each file is therefore parsed in a worker process (as many as there are cores,
so a source's files are parsed in parallel) that receives the file's bytes and returns a
``ParsedDocument``. A worker that has not answered within the time limit is killed and one that
dies is replaced; either way that file gets an outcome with the reason, and the other files go on.
A parser about to do slow work that the file's size does not predict (OCR of scanned pages) asks
for more time first (``ask_for_more_time``), which moves that file's deadline.
``concurrent.futures.ProcessPoolExecutor`` cannot kill one stuck worker, hence this small pool.
A worker may also be given a memory limit (its address space may grow that much past what it
had once loaded): a file that needs more is quarantined "over the memory limit", and two
workers cannot take a small machine down.

Workers are forked from a forkserver (a clean process that imports the parsers once), never from
the calling process, which runs threads (LanceDB's event loop, Dagster's) that a fork would copy
in an undefined state. As with any spawned process, the calling program's main module must be a
file (a script, pytest, Dagster): a worker imports it again, so a program read from stdin cannot parse.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from ai_assets.core.documents.formats import PARSERS, parse_document
from ai_assets.core.documents.model import ParsedDocument, UnreadableDocument

Parser = Callable[..., ParsedDocument]  # (format, bytes, *, ocr): a module-level function

# Imported once by the forkserver, so a new worker starts with every parser loaded.
_PRELOAD = ["ai_assets.core.documents.formats", *sorted({module for module, _ in PARSERS.values()})]
_STOP_SECONDS = 5.0


# The forkserver listens on a Unix socket at <temp dir>/pymp-XXXXXXXX/listener-XXXXXXXX, and the
# kernel caps such a path at 107 bytes: with a longer TMPDIR it cannot start ("AF_UNIX path too long").
_FORKSERVER_MAX_TEMP_DIR = 70


def worker_context() -> multiprocessing.context.BaseContext:
    """The forkserver's context; spawn where the temp dir's path is too long for its socket
    (each spawned worker then imports the parsers itself: slower to start, same results)."""
    if len(tempfile.gettempdir()) > _FORKSERVER_MAX_TEMP_DIR:
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context


class ParsingUnavailable(RuntimeError):
    """No parsing worker could be started: nothing can be parsed (not one file's fault)."""


@dataclass(frozen=True)
class ParseJob:
    key: str  # the file's path in its source: how the outcome is matched to the file
    format: str
    data: bytes
    ocr: bool = True  # read scanned pages by OCR


@dataclass(frozen=True)
class ParseOutcome:
    key: str
    parsed: ParsedDocument | None
    reason: str | None  # why there is no document: the quarantine reason
    seconds: float


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def parse_files(
    jobs: Iterable[ParseJob],
    *,
    workers: int,
    timeout_seconds: float,
    parser: Parser = parse_document,
    timeout_hint: str = "",
    memory_bytes: int | None = None,
) -> Iterator[ParseOutcome]:
    """An outcome for every job, in the order they finish. ``jobs`` is read lazily, one job per
    idle worker, so only the files being parsed are held in memory. With ``memory_bytes``, each
    worker may use that much memory beyond what it holds once started."""
    pool = _Pool(worker_context(), max(1, workers), parser, memory_bytes)
    pending = iter(jobs)
    exhausted = False
    try:
        while True:
            while not exhausted and pool.has_room():
                job = next(pending, None)
                if job is None:
                    exhausted = True
                else:
                    pool.start(job)
            if not pool.busy:
                return
            yield from pool.collect(timeout_seconds, timeout_hint)
    finally:
        pool.stop()


class _Worker:
    def __init__(self, context, parser: Parser, memory_bytes: int | None) -> None:
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, parser, memory_bytes), daemon=True)
        self.process.start()
        child.close()
        self.job: ParseJob | None = None
        self.started = 0.0
        self.granted = 0.0  # seconds the parser asked for beyond the limit (``ask_for_more_time``)


class _Pool:
    def __init__(self, context, size: int, parser: Parser, memory_bytes: int | None) -> None:
        self.context, self.size, self.parser, self.memory_bytes = context, size, parser, memory_bytes
        self.idle: list[_Worker] = []
        self.busy: list[_Worker] = []

    def has_room(self) -> bool:
        return len(self.busy) < self.size

    def start(self, job: ParseJob) -> None:
        worker = self.idle.pop() if self.idle else self._new_worker()
        worker.connection.send((job.format, job.data, job.ocr))
        worker.job, worker.started, worker.granted = job, time.perf_counter(), 0.0
        self.busy.append(worker)

    def _new_worker(self) -> _Worker:
        worker = _Worker(self.context, self.parser, self.memory_bytes)
        try:
            worker.connection.recv()  # "ready": the file's time limit starts once the worker can parse
        except EOFError:
            worker.process.join(_STOP_SECONDS)
            raise ParsingUnavailable(
                f"a document parsing worker exited while starting (exit code {worker.process.exitcode}); "
                "its error is on stderr"
            ) from None
        return worker

    def collect(self, timeout_seconds: float, timeout_hint: str) -> Iterator[ParseOutcome]:
        """Wait for the first worker to finish, die or run out of time; yield what ended."""
        now = time.perf_counter()
        next_deadline = min(worker.started + timeout_seconds + worker.granted for worker in self.busy)
        waitables = [worker.connection for worker in self.busy] + [worker.process.sentinel for worker in self.busy]
        ready = set(wait(waitables, timeout=max(0.0, next_deadline - now)))
        now = time.perf_counter()
        for worker in list(self.busy):
            job = worker.job
            assert job is not None
            elapsed = now - worker.started
            if worker.connection in ready:
                outcome = self._answer(worker, job, elapsed)
                if outcome is None:
                    continue
            elif worker.process.sentinel in ready:
                outcome = ParseOutcome(job.key, None, self._crash_reason(worker), elapsed)
                self._discard(worker)
            elif elapsed >= timeout_seconds + worker.granted:
                outcome = ParseOutcome(
                    job.key, None, f"parsing took longer than the limit of {timeout_seconds + worker.granted:g} s{timeout_hint}", elapsed
                )
                self._discard(worker)
            else:
                continue
            yield outcome

    def _answer(self, worker: _Worker, job: ParseJob, elapsed: float) -> ParseOutcome | None:
        """The file's outcome, or None when the worker only asked for more time."""
        try:
            status, value, seconds = worker.connection.recv()
        except (EOFError, OSError):
            worker.process.join(_STOP_SECONDS)
            self._discard(worker)
            return ParseOutcome(job.key, None, self._crash_reason(worker), elapsed)
        if status == _MORE_TIME:
            worker.granted += value
            return None
        self.busy.remove(worker)
        worker.job = None
        self.idle.append(worker)
        if status == "ok":
            return ParseOutcome(job.key, value, None, seconds)
        return ParseOutcome(job.key, None, value, seconds)

    def _crash_reason(self, worker: _Worker) -> str:
        reason = f"the parser crashed (worker exit code {worker.process.exitcode})"
        # Native code (a C parser) that cannot allocate often aborts rather than raising MemoryError.
        return reason if self.memory_bytes is None else f"{reason}, perhaps {memory_limit_reason(self.memory_bytes)}"

    def _discard(self, worker: _Worker) -> None:
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(_STOP_SECONDS)
        worker.connection.close()
        if worker in self.busy:
            self.busy.remove(worker)

    def stop(self) -> None:
        for worker in self.idle:
            try:
                worker.connection.send(None)
            except OSError:
                pass
        for worker in [*self.idle, *self.busy]:
            worker.process.join(_STOP_SECONDS if worker in self.idle else 0)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(_STOP_SECONDS)
            worker.connection.close()
        self.idle, self.busy = [], []


_MORE_TIME = "more_time"
# In a worker: how a parser asks the pool for more time (None in any other process).
_ask: Callable[[float], None] | None = None


def ask_for_more_time(seconds: float) -> None:
    """Extend the time limit of the file being parsed by ``seconds``: for work that the file's
    size does not predict and that is known to be slow before it starts (OCR of N scanned
    pages). Still a limit: a parser that then hangs is stopped at the extended deadline."""
    if _ask is not None:
        _ask(seconds)


def memory_limit_reason(memory_bytes: int) -> str:
    return f"over the memory limit of {memory_bytes} bytes (setting AI_ASSETS_PARSE_MEMORY_BYTES)"


# In a worker: the memory limit it runs under (None in any other process, or without a limit).
_memory_bytes: int | None = None


@contextmanager
def memory_limit_lifted() -> Iterator[None]:
    """Run work that reserves address space it never fills (ONNX Runtime's arenas and thread pools,
    for OCR) without the worker's address-space cap, which would make it fail to allocate; the
    cap is set again afterwards from what the worker maps then. The work bounds its own memory
    (OCR renders a page at a capped size)."""
    if _memory_bytes is None:
        yield
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
    try:
        yield
    finally:
        _limit_memory(_memory_bytes)


def _limit_memory(memory_bytes: int) -> None:
    """Cap this process's address space at what it maps now plus ``memory_bytes``: the address
    space, not the resident memory, is what the kernel can cap, and what is mapped once the
    parsers are loaded (libraries, arenas) is no file's doing."""
    with open("/proc/self/statm") as statm:
        mapped = int(statm.read().split()[0]) * resource.getpagesize()
    limit = mapped + memory_bytes
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))


def _serve(connection: Connection, parser: Parser, memory_bytes: int | None = None) -> None:
    """A worker: parse each (format, bytes, ocr) received until told to stop (None)."""
    global _ask
    _ask = lambda seconds: connection.send((_MORE_TIME, seconds, 0.0))  # noqa: E731
    if memory_bytes is not None:
        global _memory_bytes
        _memory_bytes = memory_bytes
        _limit_memory(memory_bytes)
    connection.send("ready")
    while True:
        job = connection.recv()
        if job is None:
            return
        format_name, data, ocr = job
        started = time.perf_counter()
        try:
            result = ("ok", parser(format_name, data, ocr=ocr))
        except UnreadableDocument as error:
            result = ("unreadable", str(error))
        except RecursionError:
            result = ("error", "the parser gave up: the document is nested too deeply")
        except MemoryError:
            result = ("error", memory_limit_reason(memory_bytes) if memory_bytes is not None else "out of memory")
        except Exception as error:  # a parser's own bug on this file: quarantine it, keep the worker
            result = ("error", f"the parser failed: {type(error).__name__}: {error}")
        connection.send((*result, time.perf_counter() - started))
