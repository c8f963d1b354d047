"""Serving only what passed, on real builds: a failing gate keeps the served version, a pending
candidate is promoted by the next passing build, and readers follow the served pointer."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import dagster as dg
import pytest

from ai_assets.build import run_build
from ai_assets.cli import main
from ai_assets.core.store.tables import scan
from ai_assets.core.store.versions import serving_state
from ai_assets.definitions import build_definitions
from ai_assets.settings import Settings
from ai_assets_tests.test_assets_pipeline import build, latest_metadata, ran, table_for
from ai_assets_tests.test_checks import latest_check


@pytest.fixture
def cli_data_dir(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The CLI reads the same data dir (and so the same LanceDB) as the builds of the test."""
    monkeypatch.setenv("AI_ASSETS_DATA_DIR", str(settings.data_dir))
    return settings


def rows_at(settings: Settings, version: int) -> set[tuple[str, str]]:
    table = table_for(settings)
    table.checkout(version)
    return {(row["chunk_id"], row["run_id"]) for row in scan(table, ["chunk_id", "run_id"]).to_pylist()}


def fts_doc_keys(capsys: pytest.CaptureFixture[str], term: str, *version: str) -> list[str]:
    assert main(["search", term, "--mode", "fts", "--json", *version]) == 0
    return [hit["doc_key"] for hit in json.loads(capsys.readouterr().out)]


def test_failing_gate_keeps_the_served_version_until_a_passing_build_promotes_the_candidate(
    cli_data_dir: Settings, instance: dg.DagsterInstance, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = cli_data_dir
    build(settings, instance)
    served = serving_state(table_for(settings)).served
    assert served is not None and latest_metadata(instance, "served_index", "minilm")["promoted"] is True

    # An edit that loses q1's answer and brings a new word: the candidate is worse than what is served.
    (data_dir / "sources" / "alpha" / "retries.md").write_text("# Zebrafish\n\nNotes about zebrafish tanks.\n")
    messages: list[str] = []
    failed = run_build(build_definitions(settings), instance, settings.embedders, echo=messages.append)
    assert not failed.ok
    assert any("retrieval_quality_gate failed" in failure for failure in failed.failures), failed.failures
    state = serving_state(table_for(settings))
    assert state.served == served and state.pending == state.candidate == state.latest > served
    gate = latest_check(instance, "retrieval_evaluation", "retrieval_quality_gate", "minilm")
    assert not gate.passed and gate.severity == dg.AssetCheckSeverity.ERROR
    assert f"candidate v{state.candidate} not promoted" in gate.description
    assert f"dropped more than 0.02 below the served version (v{served})" in gate.description
    record = latest_metadata(instance, "served_index", "minilm")
    assert (record["promoted"], record["gate"], record["served_version"]) == (False, "failed", served)
    assert record["candidate_version"] == state.candidate and "quality gate failed" in record["decision"]
    # Both versions' scores, as tables (the served one's and the waiting candidate's).
    assert {row["search"] for row in record["served_scores"]} == {row["search"] for row in record["candidate_scores"]}
    # Readers: search reads the served version, which does not hold the new word; latest does.
    assert fts_doc_keys(capsys, "zebrafish") == []
    assert fts_doc_keys(capsys, "zebrafish", "--version", "latest") == ["alpha/retries.md"]
    assert fts_doc_keys(capsys, "zebrafish", "--version", str(state.candidate)) == ["alpha/retries.md"]

    # Nothing changed since, yet the next build re-evaluates the pending candidate (it fails again).
    messages.clear()
    again = run_build(build_definitions(settings), instance, settings.embedders, echo=messages.append)
    assert not again.ok and ran(again) == [("index_and_evaluate_job", "minilm")]
    assert any(f"candidate v{state.candidate} is not served yet (serving v{served})" in line for line in messages)

    # Under a gate it passes, the candidate is promoted, and searches find the new word. (The
    # re-evaluating build may have compacted it into a newer version: the same rows.)
    lenient = settings.model_copy(update={"quality_max_ndcg_drop": 1.0})
    promoted = build(lenient, instance)
    assert ran(promoted) == [("index_and_evaluate_job", "minilm")]
    after = serving_state(table_for(settings))
    assert after.served == after.candidate == after.latest >= state.candidate and after.pending is None
    assert rows_at(settings, after.served) == rows_at(settings, state.candidate)
    assert after.history[-1] == served  # the earlier one stays tagged for a rollback
    assert fts_doc_keys(capsys, "zebrafish") == ["alpha/retries.md"]
    assert latest_metadata(instance, "answer_evaluation", "minilm")["index_version"] == after.served
    # Up to date now: nothing pending, nothing runs.
    assert build(lenient, instance).runs == []


def test_a_floor_the_served_version_misses_fails_the_build_and_serves_nothing_new(
    settings: Settings, instance: dg.DagsterInstance, data_dir: Path
) -> None:
    build(settings, instance)
    served = serving_state(table_for(settings)).served
    # Judge a wrong document relevant for q1: every mode's nDCG@10 falls below a high floor.
    qrels = data_dir / "eval" / "tiny_qa" / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text().replace("q1\talpha/retries.md\t2", "q1\tbeta/flows.rst\t2"))
    floor = settings.model_copy(update={"quality_min_ndcg_at_10": 0.99})
    messages: list[str] = []
    report = run_build(build_definitions(floor), instance, floor.embedders, echo=messages.append)
    assert not report.ok
    gate = latest_check(instance, "retrieval_evaluation", "retrieval_quality_gate", "minilm")
    assert "tiny_qa/dense ndcg@10" in gate.description and "below the floor (0.9900)" in gate.description
    assert any("retrieval_quality_gate failed (error)" in message for message in messages)
    assert serving_state(table_for(settings)).served == served


def test_nothing_served_yet_is_explained_with_the_command_to_run(
    cli_data_dir: Settings, instance: dg.DagsterInstance, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    qrels = data_dir / "eval" / "tiny_qa" / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text().replace("q1\talpha/retries.md\t2", "q1\tbeta/flows.rst\t2"))
    floor = cli_data_dir.model_copy(update={"quality_min_ndcg_at_10": 0.99})
    assert not run_build(build_definitions(floor), instance, floor.embedders, echo=lambda _: None).ok
    state = serving_state(table_for(cli_data_dir))
    assert state.served is None and state.candidate is not None

    for command in (["search", "cron"], ["ask", "how do I launch a job on a cron?"]):
        assert main(command) == 2
        error = capsys.readouterr().err
        assert f"has no served version yet (candidate v{state.candidate} has not passed its quality gate)" in error
        assert "run `ai-assets build`" in error and "`ai-assets promote --list`" in error
    # What the operator reads: nothing served, the candidate and why.
    assert main(["promote", "--list", "--json"]) == 0
    (status,) = json.loads(capsys.readouterr().out)
    assert status["served"] is None and status["candidate"] == state.candidate and status["gate"] == "failed"
    assert "below the floor" in status["last_decision"]
    assert status["candidate_results"] and status["served_results"] == []

    # An operator may serve it anyway, with a reason that is recorded; then answers come from it.
    assert main(["promote", "--force"]) == 2 and "needs --reason" in capsys.readouterr().err
    assert main(["promote", "--force", "--reason", "the qrels are being fixed"]) == 0
    assert f"now serving v{state.candidate} without its quality gate" in capsys.readouterr().out
    assert serving_state(table_for(cli_data_dir)).served == state.candidate
    record = latest_metadata(instance, "served_index", "minilm")
    assert (record["action"], record["moved_to"], record["reason"]) == ("forced promotion", state.candidate, "the qrels are being fixed")
    assert record["moved_by"] == getpass.getuser() and record["moved_from"] == "none"
    assert main(["ask", "how do I launch a job on a cron?", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["citations"][0]["doc_key"] == "alpha/schedules.md"
