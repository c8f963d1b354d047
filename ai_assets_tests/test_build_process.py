"""`ai-assets build` interrupted, killed, run twice at once, and blocked on a slot: as a subprocess.

The builds embed through a local OpenAI-protocol server that can hold a request unanswered
(``hold``), so "in the middle of embedding" is a state the test waits for rather than a guess.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import lancedb
import pyarrow.parquet as pq
import pytest

from ai_assets.build_process import Interrupted, signals_interrupt
from ai_assets.core.store.tables import scan
from ai_assets.history import latest_metadata
from ai_assets.run_recovery import ProcessIdentity, slot_claims
from ai_assets_tests.openai_server import OpenAIServer, running_openai_server

EDITED = ("A run retry starts the whole run again after a failure.", "A retry re-launches the run: edition two.")


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with running_openai_server() as running:
        yield running


def build_env(server: OpenAIServer, data_dir: Path, home: Path) -> dict[str, str]:
    base = {key: value for key, value in os.environ.items() if not key.startswith(("AI_ASSETS_", "DAGSTER_", "OPENAI_"))}
    return {
        **base,
        "AI_ASSETS_DATA_DIR": str(data_dir),
        "DAGSTER_HOME": str(home),
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": "sk-test-build-process",
        "AI_ASSETS_EMBEDDERS": "openai-small",
        "AI_ASSETS_OPENAI_EMBEDDING_DIMENSIONS": "64",
    }


def ai_assets_command() -> str:
    return shutil.which("ai-assets", path=str(Path(sys.executable).parent)) or "ai-assets"


def start_build(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[str]:
    output = log.open("w", encoding="utf-8")
    return subprocess.Popen([ai_assets_command(), "build", *args], env=env, stdout=output, stderr=subprocess.STDOUT, text=True)


def build_held_mid_embedding(server: OpenAIServer, env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    """A build whose first embedding request the server holds unanswered."""
    server.faults.append("hold")
    build = start_build(env, log)
    assert server.held.wait(timeout=180), log.read_text()
    return build


def run_build_command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ai_assets_command(), "build", *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def instance_at(home: Path, monkeypatch: pytest.MonkeyPatch) -> dg.DagsterInstance:
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return dg.DagsterInstance.get()


def embed_run(instance: dg.DagsterInstance) -> dg.DagsterRun:
    """The first run that embedded source alpha."""
    records = instance.get_run_records(
        dg.RunsFilter(job_name="embed_source_job", tags={"dagster/partition": "openai-small|alpha"})
    )
    return records[-1].dagster_run


def assert_worker_gone(run: dg.DagsterRun) -> None:
    worker = ProcessIdentity.from_tags(dict(run.tags))
    assert worker is not None and worker.pid != os.getpid()
    wait_for(lambda: worker.state() == "gone", f"the build worker {worker.pid} to end", timeout=10)


def assert_index_exact(data_dir: Path, instance: dg.DagsterInstance, present: str, absent: str) -> None:
    """The table holds exactly the chunks of the latest chunk files: no duplicate, nothing stale."""
    rows = scan(lancedb.connect(data_dir / "lancedb").open_table("chunks__openai-small"), ["chunk_id", "source", "text"])
    rows = rows.to_pylist()
    ids = [row["chunk_id"] for row in rows]
    assert len(ids) == len(set(ids))
    for source in ("alpha", "beta"):
        chunk_file = data_dir / "chunks" / "document_chunks" / f"{source}.parquet"
        expected = set(pq.read_table(chunk_file, columns=["chunk_id"]).column("chunk_id").to_pylist())
        assert {row["chunk_id"] for row in rows if row["source"] == source} == expected, source
        assert latest_metadata(instance, "document_chunks", source)["chunks"] == len(expected)
    assert any(present in row["text"] for row in rows)
    assert not any(absent in row["text"] for row in rows)


def edit(data_dir: Path) -> None:
    path = data_dir / "sources" / "alpha" / "retries.md"
    path.write_text(path.read_text(encoding="utf-8").replace(*EDITED), encoding="utf-8")


def test_a_signal_during_an_instance_call_is_raised_when_the_call_ends_and_at_once_elsewhere() -> None:
    with signals_interrupt() as gate:
        finished = []
        with pytest.raises(Interrupted) as deferred:
            with gate.held():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)  # the handler has run by now: it must not have raised here
                finished.append("the call")
        assert finished == ["the call"] and deferred.value.signum == signal.SIGTERM
    with signals_interrupt():
        with pytest.raises(Interrupted) as at_once:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        assert at_once.value.signum == signal.SIGINT


def wait_for_exit(process: subprocess.Popen[str], log: Path, timeout: float) -> int:
    """The exit code, or a failure that shows what the build printed."""
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"the build did not exit within {timeout} s; it printed:\n{log.read_text()}")


def test_kill_9_mid_embedding_then_the_next_build_fails_the_left_run_frees_its_slot_and_is_exact(
    server: OpenAIServer, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = build_env(server, data_dir, tmp_path / "home")
    killed = build_held_mid_embedding(server, env, tmp_path / "killed.log")
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=10)

    instance = instance_at(tmp_path / "home", monkeypatch)
    left = embed_run(instance)
    assert left.status == dg.DagsterRunStatus.STARTED  # what a killed build leaves behind
    assert [claim.run_id for claim in slot_claims(instance)] == [left.run_id]
    assert_worker_gone(left)  # the worker died with the supervisor: nothing writes behind our back
    edit(data_dir)
    server.release.set()

    rebuilt = run_build_command(env)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert f"run {left.run_id[:8]} (embed_source_job" in rebuilt.stdout
    assert "is gone; marked it failed, freed 1 slot(s)" in rebuilt.stdout
    assert "waiting for a" not in rebuilt.stdout  # nothing left to wait for: as fast as a normal build
    assert instance.get_run_by_id(left.run_id).status == dg.DagsterRunStatus.FAILURE
    assert slot_claims(instance) == []
    assert_index_exact(data_dir, instance, present=EDITED[1], absent=EDITED[0])


def test_sigint_mid_embedding_cancels_the_run_through_dagster_and_a_waiting_build_then_completes_exactly(
    server: OpenAIServer, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = build_env(server, data_dir, tmp_path / "home")
    interrupted = build_held_mid_embedding(server, env, tmp_path / "interrupted.log")

    # The same data dir, twice at once: refused; with --wait, queued behind the first.
    refused = run_build_command(env)
    assert refused.returncode == 75
    assert refused.stderr.startswith(f"ai-assets: error: another ai-assets build is running on the data dir {data_dir}")
    assert "--wait" in refused.stderr
    queued = start_build(env, tmp_path / "queued.log", "--wait")
    wait_for(lambda: "waiting for it" in (tmp_path / "queued.log").read_text(), "the second build to queue")
    edit(data_dir)  # made while the first build runs; the queued build must pick it up

    signalled = time.monotonic()
    interrupted.send_signal(signal.SIGINT)
    code = wait_for_exit(interrupted, tmp_path / "interrupted.log", timeout=30)
    seconds = time.monotonic() - signalled
    output = (tmp_path / "interrupted.log").read_text()
    assert code == 130 and seconds < 30, output
    assert "build stopped: interrupted by SIGINT\n" in output
    assert "marked canceled in Dagster, freed 1 slot(s)" in output
    assert "  finished: [1/5] ingest_source_job alpha\n" in output
    assert "  stopped: [2/5] embed_source_job openai-small|alpha (run " in output
    assert (
        "  not started: [3/5] ingest_source_job beta, [4/5] embed_source_job openai-small|beta, "
        "[5/5] index_and_evaluate_job openai-small\n"
    ) in output

    instance = instance_at(tmp_path / "home", monkeypatch)
    canceled = embed_run(instance)
    assert canceled.status == dg.DagsterRunStatus.CANCELED
    assert_worker_gone(canceled)
    server.release.set()

    assert queued.wait(timeout=600) == 0, (tmp_path / "queued.log").read_text()
    assert "build complete" in (tmp_path / "queued.log").read_text()
    assert slot_claims(instance) == []
    assert_index_exact(data_dir, instance, present=EDITED[1], absent=EDITED[0])


def test_a_step_blocked_on_a_slot_names_its_holder_and_a_run_terminated_in_dagster_stops_its_build(
    server: OpenAIServer, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    holding = build_held_mid_embedding(server, build_env(server, data_dir, home), tmp_path / "holding.log")
    instance = instance_at(home, monkeypatch)
    holder = embed_run(instance)

    # Another data dir on the same instance (same sources, other words): its embedding step waits
    # for the model_calls slot.
    other = tmp_path / "other"
    shutil.copytree(data_dir / "sources", other / "sources")
    edit(other)
    blocked = start_build(build_env(server, other, home), tmp_path / "blocked.log")
    expected = f"    waiting for a model_calls slot, held by run {holder.run_id[:8]} (embed_source_job"
    wait_for(lambda: expected in (tmp_path / "blocked.log").read_text(), "the blocked build to name the slot's holder")

    # Terminate in Dagster (what the UI's Terminate records): the holding build stops, its slot is freed.
    instance.report_run_canceling(holder, "terminated by the test")
    assert wait_for_exit(holding, tmp_path / "holding.log", timeout=30) == 1
    output = (tmp_path / "holding.log").read_text()
    assert f"build stopped: run {holder.run_id[:8]} (embed_source_job openai-small|alpha, CANCELING" in output
    assert "was terminated in Dagster" in output
    assert instance.get_run_by_id(holder.run_id).status == dg.DagsterRunStatus.CANCELED
    server.release.set()

    assert blocked.wait(timeout=600) == 0, (tmp_path / "blocked.log").read_text()
    assert "build complete" in (tmp_path / "blocked.log").read_text()
    assert slot_claims(instance) == []


def test_a_build_outside_the_project_fails_naming_the_data_dir_and_creates_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AI_ASSETS_", "DAGSTER_", "OPENAI_"))}
    result = subprocess.run(
        [ai_assets_command(), "build"], cwd=empty, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 2
    assert result.stderr == (
        f"ai-assets: error: sources folder {empty}/data/sources does not exist or is not a directory "
        f"(data dir {empty}/data): "
        "run from the project folder, or set AI_ASSETS_DATA_DIR to a data dir that holds sources/<name>/ folders\n"
    )
    assert list(empty.iterdir()) == []  # no ./data/dagster_home, no empty table
