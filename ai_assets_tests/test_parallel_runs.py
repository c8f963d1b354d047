"""Parallel Dagster runs of several source partitions publish into one table without loss."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

from ai_assets.build import run_build
from ai_assets.core.store.tables import scan
from ai_assets.definitions import INGEST_JOB, build_definitions
from ai_assets.history import latest_metadata
from ai_assets.settings import Settings
from ai_assets_tests.conftest import write_sources
from ai_assets_tests.test_assets_pipeline import table_for

SOURCES = ("alpha", "beta", "gamma", "delta")


def source_files(round_number: int) -> dict[str, dict[str, str]]:
    return {
        source: {
            f"page{page}.md": (
                f"# {source} page {page}\n\nRound {round_number}: how {source} handles retries, schedules and "
                f"partitions, item {page}. " + " ".join(f"{source}-term-{page}-{word}" for word in range(40))
            )
            for page in range(3 + index)
        }
        for index, source in enumerate(SOURCES)
    }


def test_parallel_embedding_runs_leave_no_duplicate_and_no_missing_row(tmp_path: Path) -> None:
    data_dir, home = tmp_path / "data", tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    settings = Settings(data_dir=data_dir)
    env = {**os.environ, "AI_ASSETS_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(home)}
    cli = str(Path(sys.executable).parent / "dagster")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for round_number in range(2):
            for source, files in source_files(round_number).items():
                shutil.rmtree(data_dir / "sources" / source, ignore_errors=True)
                write_sources(data_dir, {source: files})
            if round_number == 0:
                report = run_build(build_definitions(settings), instance, settings.embedders, echo=lambda _: None)
                assert report.ok, report.failures
                continue
            definitions = build_definitions(settings)
            for source in SOURCES:
                assert definitions.resolve_job_def(INGEST_JOB).execute_in_process(
                    instance=instance, partition_key=source
                ).success
            # Every source's embedding run starts at once, each in its own process.
            processes = [
                subprocess.Popen(
                    [cli, "asset", "materialize", "-m", "ai_assets.definitions", "--select", "chunk_embeddings",
                     "--partition", f"minilm|{source}"],
                    env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                )
                for source in SOURCES
            ]
            outputs = [process.communicate(timeout=600)[0] for process in processes]
            for process, output in zip(processes, outputs, strict=True):
                assert process.returncode == 0, output[-3000:]

            rows = scan(table_for(settings), ["chunk_id", "source", "doc_key", "run_id", "text"]).to_pylist()
            ids = [row["chunk_id"] for row in rows]
            assert len(ids) == len(set(ids)), "duplicate rows"
            for source in SOURCES:
                expected_count = latest_metadata(instance, "document_chunks", source)["chunks"]
                assert sum(1 for row in rows if row["source"] == source) == expected_count, source
            assert all(f"Round {round_number}:" in row["text"] for row in rows if "Round" in row["text"])
            assert not any("Round 0:" in row["text"] for row in rows), "a stale chunk survived"
            assert {row["doc_key"] for row in rows} == {
                f"{source}/page{page}.md" for index, source in enumerate(SOURCES) for page in range(3 + index)
            }
            assert len({row["run_id"] for row in rows}) == len(SOURCES)  # each source written by its own run
