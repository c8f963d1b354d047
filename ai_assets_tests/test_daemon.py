"""The real daemon on a temp DAGSTER_HOME: a new source folder is indexed without anyone clicking,
a removed one leaves the index, and search_index goes overdue and fresh again."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import dagster as dg
import pytest
from dagster._core.definitions.freshness import FreshnessState

from ai_assets.cli import INSTANCE_YAML
from ai_assets.core.embedding.base import MINILM
from ai_assets.core.store.tables import open_table, source_row_counts
from ai_assets.definitions import INDEX_JOB, build_definitions
from ai_assets.partitions import SOURCE_DIMENSION
from ai_assets.settings import Settings
from ai_assets_tests.conftest import TINY_SOURCES, write_sources

T = TypeVar("T")
SEARCH_INDEX = dg.AssetKey("search_index")
QUEUE_POLLED_EVERY_SECOND = """
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
"""
POLL_SECONDS = 0.25


def wait_for(what: str, probe: Callable[[], T | None], daemon: subprocess.Popen, timeout: float) -> T:
    """Poll until ``probe`` returns something truthy; fail with the daemon's log on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        if daemon.poll() is not None:
            break
        time.sleep(POLL_SECONDS)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; daemon exit code {daemon.poll()}")


@pytest.fixture
def daemon_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    # The CLI's instance, with its (default) queued run coordinator polling the queue every
    # second instead of every 5 s: each run the sensor or automation requests waits one poll.
    (home / "dagster.yaml").write_text(INSTANCE_YAML + QUEUE_POLLED_EVERY_SECOND, encoding="utf-8")
    data = tmp_path / "data"
    write_sources(data, {"alpha": TINY_SOURCES["alpha"]})
    (data / "eval").mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AI_ASSETS_", "OPENAI_"))}
    env.update(
        DAGSTER_HOME=str(home),
        AI_ASSETS_DATA_DIR=str(data),
        # The shortest intervals each daemon takes (settings allow 1 s): every hop of the chain
        # sensor -> queued run -> automation waits for the next tick of its daemon.
        AI_ASSETS_SENSOR_INTERVAL_SECONDS="1",
        AI_ASSETS_AUTOMATION_INTERVAL_SECONDS="1",
        # The shortest policy Dagster evaluates: overdue one minute after the last materialization.
        AI_ASSETS_FRESHNESS_FAIL_MINUTES="1",
        AI_ASSETS_FRESHNESS_WARN_MINUTES="0",
        FRESHNESS_DAEMON_INTERVAL_SECONDS="1",
    )
    return env


@pytest.fixture
def daemon(daemon_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen]:
    # Create the new instance's SQLite schema first: the daemon and this test creating it at the
    # same moment failed once ("table instigators already exists").
    # (In this process: the same schema, without starting one more Python.)
    with dg.DagsterInstance.from_config(daemon_env["DAGSTER_HOME"]):
        pass
    log = (tmp_path / "daemon.log").open("wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-m", "ai_assets.definitions"],
        env=daemon_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
        print((tmp_path / "daemon.log").read_text(errors="replace")[-4000:])


def test_daemon_indexes_a_new_source_drops_a_removed_one_and_tracks_freshness(
    daemon_env: dict[str, str], daemon: subprocess.Popen, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in daemon_env.items():
        monkeypatch.setenv(key, value)
    data = Path(daemon_env["AI_ASSETS_DATA_DIR"])
    settings = Settings()
    instance = dg.DagsterInstance.get()

    def rows_by_source() -> dict[str, int]:
        import lancedb

        db = lancedb.connect(settings.resolved_lancedb_uri)
        if "chunks__minilm" not in db.table_names(limit=None):
            return {}
        return source_row_counts(open_table(db, MINILM, create=False))

    def leaderboard_after(timestamp: float) -> bool:
        record = instance.get_latest_materialization_event(dg.AssetKey("model_leaderboard"))
        return record is not None and record.timestamp > timestamp

    # The first sensor tick finds alpha; automation carries it to the index and the leaderboard.
    wait_for("alpha in the index", lambda: rows_by_source().get("alpha"), daemon, timeout=240)

    # A new folder while the daemon runs.
    added_at = time.time()
    write_sources(data, {"gamma": {"howto.md": "# Backfills\n\nA backfill materializes many partitions at once."}})
    wait_for("gamma in the index", lambda: rows_by_source().get("gamma"), daemon, timeout=240)
    wait_for("the leaderboard to follow", lambda: leaderboard_after(added_at), daemon, timeout=240)
    assert "gamma" in instance.get_dynamic_partitions(SOURCE_DIMENSION)

    # Removed: partition and rows go, alpha stays.
    shutil.rmtree(data / "sources" / "gamma")
    wait_for("gamma to leave the index", lambda: "gamma" not in rows_by_source(), daemon, timeout=240)
    assert "gamma" not in instance.get_dynamic_partitions(SOURCE_DIMENSION)
    assert rows_by_source().get("alpha")

    # Freshness: overdue a minute after the last materialization, fresh again after a new one.
    def freshness() -> FreshnessState | None:
        record = instance.get_freshness_state_records([SEARCH_INDEX]).get(SEARCH_INDEX)
        return record.freshness_state if record else None

    wait_for("search_index to fail freshness", lambda: freshness() == FreshnessState.FAIL, daemon, timeout=150)
    # A new materialization of search_index itself (the asset whose freshness is watched), from
    # the index job: its evaluations would first wait for the model pool's one slot, which the
    # daemon's own run for the removal may still hold.
    result = build_definitions(settings).resolve_job_def(INDEX_JOB).execute_in_process(
        instance=instance, partition_key="minilm", asset_selection=[SEARCH_INDEX]
    )
    assert result.success
    wait_for("search_index to pass freshness", lambda: freshness() == FreshnessState.PASS, daemon, timeout=60)
