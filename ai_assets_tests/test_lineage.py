"""`ai-assets trace` and `ai-assets rollback` on a real build."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from ai_assets.cli import main
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


def test_rollback_restores_a_recorded_version_and_build_moves_forward(
    built: Settings, instance: dg.DagsterInstance, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = latest_metadata(instance, "search_index", "minilm")["table_version"]
    original = rows_by_chunk(built)
    (data_dir / "sources" / "beta" / "flows.rst").unlink()
    build(built, instance)
    after_delete = rows_by_chunk(built)
    assert len(after_delete) < len(original)

    output = run_cli(capsys, "rollback", "--to", str(recorded))
    assert f"to the contents of version {recorded}" in output
    assert rows_by_chunk(built) == original

    build(built, instance)
    assert rows_by_chunk(built).keys() == after_delete.keys()
    assert "(current)" in run_cli(capsys, "rollback", "--list")
    assert main(["rollback", "--to", "99999"]) == 2
    assert "has no version 99999" in capsys.readouterr().err
