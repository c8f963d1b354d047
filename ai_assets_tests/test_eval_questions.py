"""A knowledge base without hand-written eval sets is evaluated on questions drawn from its own
documents, with the real model and LanceDB; one too small to sample says how to get an eval set."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg

from ai_assets.build import run_build
from ai_assets.core.evaluation.beir import load_eval_set
from ai_assets.definitions import build_definitions
from ai_assets.history import evaluation_leaderboard, latest_metadata
from ai_assets.metadata_tables import SERVED_PREFIX, read_scores
from ai_assets.settings import Settings
from ai_assets_tests.conftest import write_sources
from ai_assets_tests.test_assets_pipeline import build


def test_without_data_eval_the_generated_sets_are_scored_gated_and_labelled(
    settings: Settings, instance: dg.DagsterInstance, data_dir: Path
) -> None:
    shutil.rmtree(data_dir / "eval")
    build(settings, instance)
    questions = latest_metadata(instance, "eval_questions", "alpha")
    assert questions["questions"] > 0 and questions["documents_generated"] == 3
    assert "| question | generator | document | section | page |" in questions["sample"]
    alpha = Path(settings.generated_eval_location) / "sources" / "alpha"
    assert json.loads((alpha / "eval.json").read_text()) == {"sources": ["alpha"], "kind": "generated-offline"}
    assert load_eval_set(alpha).kind == "generated-offline"
    lineage = [json.loads(line) for line in (alpha / "questions.jsonl").read_text().splitlines()]
    assert {"doc_key", "doc_version", "chunk_id", "section", "page", "generator_version", "run_id"} <= set(lineage[0])

    evaluation = latest_metadata(instance, "retrieval_evaluation", "minilm")
    assert evaluation["eval_set_kinds"] == [
        {"eval_set": "generated/alpha", "kind": "generated-offline"}, {"eval_set": "generated/beta", "kind": "generated-offline"},
    ]
    served = latest_metadata(instance, "served_index", "minilm")
    assert served["promoted"] is True
    assert {(row["eval_set"], row["kind"]) for row in read_scores(served, SERVED_PREFIX)} == {
        ("generated/alpha", "generated-offline"), ("generated/beta", "generated-offline"),
    }
    # The leaderboard `ai-assets build` prints labels them by kind too.
    assert {row.kind for row in evaluation_leaderboard(instance, settings.names, ["minilm"])} == {"generated-offline"}
    leaderboard = latest_metadata(instance, "model_leaderboard")["leaderboard"]
    assert {row["search"].split("/")[0] for row in leaderboard} == {"generated"}

    # An unchanged corpus makes no new question: the next ingestion keeps every one.
    ingest = build_definitions(settings).resolve_job_def("ingest_source_job")
    assert ingest.execute_in_process(instance=instance, partition_key="alpha").success
    assert latest_metadata(instance, "eval_questions", "alpha")["documents_kept"] == 3
    assert [json.loads(line) for line in (alpha / "questions.jsonl").read_text().splitlines()] == lineage

    # A document unreadable now (too large: quarantined) keeps its questions; a deleted one drops them.
    (data_dir / "sources" / "alpha" / "schedules.md").write_text("# Schedules\n\n" + "cron " * 400, encoding="utf-8")
    (data_dir / "sources" / "alpha" / "notes" / "partitions.txt").unlink()
    limited = settings.model_copy(update={"max_document_bytes": 1000})
    ingest = build_definitions(limited).resolve_job_def("ingest_source_job")
    assert ingest.execute_in_process(instance=instance, partition_key="alpha").success
    # Unreadable now, it is kept stale (its last good chunks carried over), and so are its questions.
    assert latest_metadata(instance, "source_documents", "alpha")["stale"] == 1
    kept = {json.loads(line)["doc_key"] for line in (alpha / "questions.jsonl").read_text().splitlines()}
    assert kept == {"alpha/retries.md", "alpha/schedules.md"}


def test_a_source_too_small_to_sample_and_no_eval_set_fails_saying_how_to_make_one(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    data_dir = tmp_path / "small"
    write_sources(data_dir, {"memo": {"note.md": "# Note\n\nThe build runs nightly."}})
    settings = Settings(data_dir=data_dir)
    report = run_build(build_definitions(settings), instance, settings.embedders, echo=lambda _: None)
    questions = latest_metadata(instance, "eval_questions", "memo")
    assert questions["questions"] == 0 and "too small to sample" in questions["too_small"]
    assert any("no eval set to score" in failure and "eval_questions" in failure for failure in report.failures), report.failures
    allowed = settings.model_copy(update={"quality_allow_no_eval_sets": True})
    assert run_build(build_definitions(allowed), instance, allowed.embedders, echo=lambda _: None).ok
