"""The parsing pool: files in parallel, a stuck parser killed at the time limit, a crashed one replaced."""

from __future__ import annotations

import os
import time

from ai_assets.core.documents.formats import parse_document
from ai_assets.core.documents.model import ParsedDocument
from ai_assets.core.documents.parsing import ParseJob, parse_files


def misbehaving_parser(format_name: str, data: bytes, *, ocr: bool = True) -> ParsedDocument:
    """The real parsers, except for files that make this one loop forever, exit, or raise."""
    if data.startswith(b"LOOP"):
        while True:
            pass
    if data.startswith(b"EXIT"):
        os._exit(3)
    if data.startswith(b"RAISE"):
        raise KeyError("a parser bug")
    return parse_document(format_name, data, ocr=ocr)


def test_one_pathological_file_neither_hangs_nor_crashes_the_rest() -> None:
    jobs = [ParseJob(f"good{i}.md", "markdown", f"# Doc {i}\n\nText {i}.".encode()) for i in range(6)]
    jobs[2:2] = [ParseJob("loops.md", "markdown", b"LOOP"), ParseJob("exits.md", "markdown", b"EXIT")]
    jobs.append(ParseJob("raises.md", "markdown", b"RAISE"))
    started = time.perf_counter()
    outcomes = {outcome.key: outcome for outcome in parse_files(jobs, workers=2, timeout_seconds=2.0, parser=misbehaving_parser)}
    assert time.perf_counter() - started < 30
    assert set(outcomes) == {job.key for job in jobs}
    assert outcomes["loops.md"].reason == "parsing took longer than the limit of 2 s"
    assert outcomes["exits.md"].reason == "the parser crashed (worker exit code 3)"
    assert outcomes["raises.md"].reason == "the parser failed: KeyError: 'a parser bug'"
    for index in range(6):
        parsed = outcomes[f"good{index}.md"].parsed
        assert parsed is not None and parsed.title == f"Doc {index}"


def test_files_are_parsed_in_parallel_workers() -> None:
    jobs = [ParseJob(f"f{i}.md", "markdown", f"# T{i}\n\nbody".encode()) for i in range(20)]
    pids = {outcome.parsed.metadata["pid"] for outcome in parse_files(jobs, workers=2, timeout_seconds=30, parser=pid_parser)}
    assert len(pids) == 2 and os.getpid() not in {int(pid) for pid in pids}


def pid_parser(format_name: str, data: bytes, *, ocr: bool = True) -> ParsedDocument:
    time.sleep(0.05)  # long enough that one worker cannot take every file alone
    parsed = parse_document(format_name, data, ocr=ocr)
    return parsed.model_copy(update={"metadata": {"pid": str(os.getpid())}})


def test_a_temp_dir_too_long_for_the_forkserver_socket_still_parses(tmp_path, monkeypatch) -> None:
    # A forkserver's Unix socket lives under the temp dir, and the kernel caps that path at 107
    # bytes; a deep TMPDIR (a CI's or a container's) must not stop ingestion.
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    monkeypatch.setattr("tempfile.tempdir", str(deep))
    jobs = [ParseJob(f"f{i}.md", "markdown", f"# T{i}\n\nbody".encode()) for i in range(3)]
    outcomes = list(parse_files(jobs, workers=2, timeout_seconds=30))
    assert sorted(outcome.parsed.title for outcome in outcomes if outcome.parsed) == ["T0", "T1", "T2"]
