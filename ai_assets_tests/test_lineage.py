"""`ai-assets trace`, `ai-assets rollback` and `ai-assets promote` on a real build."""

from __future__ import annotations

import getpass
import json
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest

from ai_assets.cli import main
from ai_assets.core.store.versions import serving_state
from ai_assets.settings import Settings
from ai_assets_tests.test_assets_pipeline import build, latest_metadata, rows_by_chunk, table_for


@pytest.fixture
def built(settings: Settings, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("AI_ASSETS_DATA_DIR", str(settings.data_dir))
    build(settings, instance)
    return settings


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


def test_trace_points_at_document_file_version_and_run(
    built: Settings, instance: dg.DagsterInstance, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    traces = json.loads(run_cli(capsys, "trace", "cron expression to launch a job", "--k", "2", "--json"))
    top = traces[0]
    assert top["doc_key"] == "alpha/schedules.md"
    assert Path(top["file"]) == data_dir / "sources" / "alpha" / "schedules.md"
    assert top["document_status"] == "unchanged"
    assert top["current_content_hash"] == top["indexed_content_hash"]
    assert top["run_id"] in {run.run_id for run in instance.get_runs()}
    assert top["run_url"].endswith(f"/runs/{top['run_id']}")
    assert top["table_version"] == table_for(built).version

    schedules = data_dir / "sources" / "alpha" / "schedules.md"
    schedules.write_text(schedules.read_text() + "\nEdited.", encoding="utf-8")
    changed = json.loads(run_cli(capsys, "trace", "--chunk", top["chunk_id"], "--json"))
    assert changed[0]["document_status"] == "changed" and changed[0]["score"] is None
    schedules.unlink()
    deleted = json.loads(run_cli(capsys, "trace", "--chunk", top["chunk_id"], "--json"))
    assert deleted[0]["document_status"] == "deleted" and deleted[0]["current_content_hash"] is None

    text = run_cli(capsys, "trace", "sensor cursor", "--k", "1")
    assert "beta/sensors.html" in text and "/runs/" in text and "chunks__minilm version" in text


def test_rollback_moves_the_served_pointer_records_who_when_why_and_keeps_every_version(
    built: Settings, instance: dg.DagsterInstance, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = serving_state(table_for(built)).served
    (data_dir / "sources" / "beta" / "flows.rst").unlink()
    build(built, instance)
    second = serving_state(table_for(built)).served
    assert second > first
    latest_rows = rows_by_chunk(built)
    assert "beta/flows.rst" not in {row["doc_key"] for row in latest_rows.values()}

    output = run_cli(capsys, "rollback", "--reason", "the flows page went missing")
    assert f"now serving v{first} (was v{second})" in output
    state = serving_state(table_for(built))
    assert (state.served, state.held) == (first, state.latest)
    # Readers follow the pointer; nothing was written or deleted.
    hits = json.loads(run_cli(capsys, "search", "flow decorator", "--mode", "fts", "--json"))
    assert hits[0]["doc_key"] == "beta/flows.rst"
    assert rows_by_chunk(built) == latest_rows and table_for(built).version == state.latest
    record = latest_metadata(instance, "served_index", "minilm")
    assert (record["action"], record["moved_from"], record["moved_to"]) == ("rollback", second, first)
    assert record["moved_by"] == getpass.getuser() and record["reason"] == "the flows page went missing"
    assert datetime.fromisoformat(record["moved_at"]).tzinfo is not None
    assert record["run_id"] == ""  # recorded by hand, outside any run

    # The next build keeps the rollback (the candidate is held) and scores the answers it serves.
    build(built, instance)
    assert serving_state(table_for(built)).served == first
    assert latest_metadata(instance, "answer_evaluation", "minilm")["index_version"] == first
    assert "held back by a rollback" in latest_metadata(instance, "served_index", "minilm")["decision"]
    listing = run_cli(capsys, "rollback", "--list")
    assert f"{first:>5}" in listing and "served" in listing and "held" in listing and "latest" in listing
    status = run_cli(capsys, "promote", "--list")
    assert f"serving v{first}" in status and f"candidate v{second} held back by a rollback" in status

    # `promote` evaluates the held candidate and serves it, since it passes.
    assert f"serving v{second}" in run_cli(capsys, "promote")
    assert serving_state(table_for(built)).served == second and serving_state(table_for(built)).held is None

    assert main(["rollback", "--to", "99999", "--reason", "x"]) == 2
    assert "has no version 99999" in capsys.readouterr().err
    assert main(["rollback", "--to", str(first)]) == 2
    assert "needs --reason" in capsys.readouterr().err
    assert serving_state(table_for(built)).served == second  # neither error moved anything
