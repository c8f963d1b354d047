"""The production instance (deploy/dagster.yaml) on a real PostgreSQL server, with parallel runs.

Three source partitions are ingested and embedded by runs started at the same moment, each with
the multiprocess executor (every step in its own process). The `model_calls` pool must let only
`default_limit` embedding steps run at once across those runs; the runs, materializations and
the index must all be in order afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from ai_assets.core.embedding.base import MINILM
from ai_assets.core.store.tables import source_row_counts
from ai_assets.history import latest_metadata
from ai_assets.partitions import SOURCE_DIMENSION
from ai_assets.resources import lancedb_from_settings
from ai_assets.retries import MODEL_POOL
from ai_assets.settings import Settings
from ai_assets_tests.conftest import write_sources
from ai_assets_tests.postgres_server import PostgresServer

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("alpha", "beta", "gamma")
POOL_LIMIT = 1


def corpus() -> dict[str, dict[str, str]]:
    return {
        source: {
            f"page{page}.md": f"# {source} {page}\n\n"
            + " ".join(f"{source} explains retries, schedules and sensors, point {page}.{n}." for n in range(30))
            for page in range(2 + index)
        }
        for index, source in enumerate(SOURCES)
    }


def materialize_at_once(env: dict[str, str], selection: str, partitions: list[str]) -> None:
    """One `dagster asset materialize` per partition, all started together (multiprocess executor)."""
    dagster = str(Path(sys.executable).parent / "dagster")
    processes = [
        subprocess.Popen(
            [dagster, "asset", "materialize", "-m", "ai_assets.definitions", "--select", selection,
             "--partition", partition],
            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for partition in partitions
    ]
    outputs = [process.communicate(timeout=900)[0] for process in processes]
    for partition, process, output in zip(partitions, processes, outputs, strict=True):
        assert process.returncode == 0, f"{selection} {partition}:\n{output[-4000:]}"


def step_windows(instance: dg.DagsterInstance, step_key: str) -> list[tuple[float, float]]:
    """(start, end) of every successful execution of the step, across all runs."""
    windows = []
    for run in instance.get_runs():
        starts, ends = {}, {}
        for record in instance.get_records_for_run(run.run_id, limit=100_000).records:
            event = record.event_log_entry.dagster_event
            if event is None or event.step_key != step_key:
                continue
            if event.event_type == dg.DagsterEventType.STEP_START:
                starts[step_key] = record.event_log_entry.timestamp
            elif event.event_type == dg.DagsterEventType.STEP_SUCCESS:
                ends[step_key] = record.event_log_entry.timestamp
        if step_key in ends:
            windows.append((starts[step_key], ends[step_key]))
    return windows


def test_parallel_partitioned_build_on_postgres_with_a_model_pool(
    postgres: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, data_dir = tmp_path / "dagster_home", tmp_path / "data"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    write_sources(data_dir, corpus())
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("AI_ASSETS_", "DAGSTER_"))},
        **postgres.env(),
        "DAGSTER_HOME": str(home),
        "AI_ASSETS_DATA_DIR": str(data_dir),
        # The corpus is one sentence repeated: no page has a term or heading of its own to draw a
        # known-item question from, and this test is about the runs, not the gate.
        "AI_ASSETS_QUALITY_ALLOW_NO_EVAL_SETS": "true",
    }
    for name, value in postgres.env().items():  # this process reads the same instance
        monkeypatch.setenv(name, value)

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        instance.add_dynamic_partitions(SOURCE_DIMENSION, list(SOURCES))
        # The deployment step docs/deployment.md gives: set the pool's limit once, explicitly (runs that
        # first meet a pool at the same moment race to insert its default limit).
        subprocess.run(
            [str(Path(sys.executable).parent / "dagster"), "instance", "concurrency", "set", MODEL_POOL,
             str(POOL_LIMIT)],
            env=env, check=True, capture_output=True, timeout=120,
        )

        materialize_at_once(env, "source_documents,document_chunks", list(SOURCES))
        materialize_at_once(env, "chunk_embeddings", [f"{MINILM.name}|{source}" for source in SOURCES])
        # retrieval_evaluation and served_index are one step: selected together.
        materialize_at_once(env, "search_index,retrieval_evaluation,served_index", [MINILM.name])

        runs = instance.get_runs()
        assert len(runs) == 2 * len(SOURCES) + 1
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
        # Each run's steps ran in worker processes: the multiprocess executor.
        for run in runs:
            messages = [
                record.event_log_entry.message
                for record in instance.get_records_for_run(run.run_id, limit=100_000).records
            ]
            assert any("multiprocess executor" in message for message in messages), run.job_name

        # The embedding runs overlapped, yet their model steps did not: the pool held them.
        embed_runs = [run for run in runs if "chunk_embeddings" in str(run.asset_selection)]
        run_starts = [instance.get_run_record_by_id(run.run_id).start_time for run in embed_runs]
        windows = sorted(step_windows(instance, "chunk_embeddings"))
        assert len(windows) == len(SOURCES)
        assert max(run_starts) < windows[0][1], "the runs did not start together"
        for (_, end), (next_start, _) in zip(windows, windows[1:]):
            assert next_start >= end, f"two {MODEL_POOL} steps ran at once"

        settings = Settings(data_dir=data_dir)
        counts = source_row_counts(lancedb_from_settings(settings).table(MINILM))
        for source in SOURCES:
            chunks = latest_metadata(instance, "document_chunks", source)["chunks"]
            assert counts[source] == chunks > 0, source
        index = latest_metadata(instance, "search_index", MINILM.name)
        assert index["rows"] == sum(counts.values())
        assert latest_metadata(instance, "retrieval_evaluation", MINILM.name) is not None
