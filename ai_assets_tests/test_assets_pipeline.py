"""The real assets, real model and a real LanceDB in a temp dir, run through a Dagster instance."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import lancedb
import pytest

from ai_assets import history
from ai_assets.assets.check_outcomes import failed_error_checks
from ai_assets.build import BuildReport, run_build
from ai_assets.core.embedding.base import MINILM
from ai_assets.core.store.tables import open_table, scan, source_row_counts
from ai_assets.dagster_tags import CODE_VERSION_TAG
from ai_assets.metadata_tables import read_scores
from ai_assets.definitions import build_definitions
from ai_assets.settings import Settings


def latest_metadata(instance: dg.DagsterInstance, asset: str, partition: str | None) -> dict[str, Any]:
    metadata = history.latest_metadata(instance, asset, partition)
    assert metadata is not None, f"no materialization of {asset} {partition}"
    return metadata


def build(settings: Settings, instance: dg.DagsterInstance, force: bool = False) -> BuildReport:
    report = run_build(build_definitions(settings), instance, settings.embedders, echo=lambda _: None, force=force)
    assert report.ok, report.failures
    return report


def ran(report: BuildReport) -> list[tuple[str, str]]:
    return [(job, partition) for job, partition, _, _ in report.runs]


def table_for(settings: Settings):
    return open_table(lancedb.connect(settings.resolved_lancedb_uri), MINILM, create=False)


def rows_by_chunk(settings: Settings) -> dict[str, dict[str, Any]]:
    rows = scan(table_for(settings), ["chunk_id", "source", "doc_key", "run_id", "doc_content_hash"])
    return {row["chunk_id"]: row for row in rows.to_pylist()}


def test_full_build_then_unchanged_rebuild_embeds_nothing(
    settings: Settings, instance: dg.DagsterInstance
) -> None:
    build(settings, instance)
    first = {source: latest_metadata(instance, "chunk_embeddings", f"minilm|{source}") for source in ("alpha", "beta")}
    for source, metadata in first.items():
        assert metadata["chunks"] > 0
        assert metadata["embedded"] == metadata["chunks"], source
        assert metadata["cache_hits"] == 0
        assert metadata["table_written"] is True
        assert metadata["precision_reason"].startswith("auto: fastest measured"), metadata["precision"]
    table = table_for(settings)
    assert source_row_counts(table) == {source: first[source]["chunks"] for source in first}
    version_after_first = table.version

    index = latest_metadata(instance, "search_index", "minilm")
    assert index["rows"] == sum(metadata["chunks"] for metadata in first.values())
    assert "text_idx" in index["indexes"]

    evaluation = latest_metadata(instance, "retrieval_evaluation", "minilm")
    scores = read_scores(evaluation)
    hand_written = [row for row in scores if row["eval_set"] == "tiny_qa"]
    modes = {(row["eval_set"], row["mode"]) for row in hand_written}
    assert modes == {("tiny_qa", "dense"), ("tiny_qa", "fts"), ("tiny_qa", "hybrid")}
    # Beside it, the sets eval_questions drew from each source.
    assert {row["eval_set"] for row in scores} - {"tiny_qa"} == {"generated/alpha", "generated/beta"}
    for row in hand_written:
        assert row["queries"] == 3  # q4 has only a score-0 judgment: not evaluated
        assert row["ndcg@10"] > 0.6, row

    answers = latest_metadata(instance, "answer_evaluation", "minilm")
    assert answers["questions"] == 3
    assert answers["tiny_qa/context_containment"] == pytest.approx(1.0)
    # q2's answer is one sentence of the corpus, which the extractor must find word for word (first,
    # as the closest sentence) and cite; the second closest sentence follows it.
    assert (
        "| tiny_qa/q2: cron expression to launch a job | A schedule launches a job at fixed times, written as a "
        "cron expression. [1] The daemon must be running for schedules to tick. [1] | 0.71 | yes | 1.00 |"
    ) in answers["per_question"]
    assert answers["tiny_qa/citations_relevant"] == pytest.approx(1.0)
    assert answers["tiny_qa/answer_f1"] >= 0.33
    leaderboard = latest_metadata(instance, "model_leaderboard", None)
    assert leaderboard["rows"] == 9 and {"tiny_qa/minilm/dense", "tiny_qa/minilm/fts", "tiny_qa/minilm/hybrid"} <= {
        row["search"] for row in leaderboard["leaderboard"]
    }

    version_indexed = table_for(settings).version
    # Nothing changed: every step is up to date and no run is launched.
    unchanged = build(settings, instance)
    assert unchanged.runs == [] and len(unchanged.up_to_date) == 5
    assert table_for(settings).version == version_indexed

    # Forced, every asset runs again and still embeds and writes nothing.
    forced = build(settings, instance, force=True)
    assert len(forced.runs) == 5 and not forced.up_to_date
    for source in ("alpha", "beta"):
        again = latest_metadata(instance, "chunk_embeddings", f"minilm|{source}")
        assert again["embedded"] == 0
        assert again["cache_hits"] == first[source]["chunks"]
        assert again["table_written"] is False
        assert latest_metadata(instance, "document_chunks", source)["documents_rechunked"] == 0
    # Index maintenance only: no chunk write happened in the forced build.
    assert latest_metadata(instance, "search_index", "minilm")["rows"] == index["rows"]
    assert table_for(settings).version >= version_after_first


def test_build_reruns_what_changed_outside_dagster(settings: Settings, instance: dg.DagsterInstance) -> None:
    build(settings, instance)
    # The LanceDB directory is deleted: the table is missing, so every source is embedded again.
    shutil.rmtree(settings.resolved_lancedb_uri)
    rebuilt = build(settings, instance)
    assert ran(rebuilt) == [
        ("embed_source_job", "minilm|alpha"), ("embed_source_job", "minilm|beta"), ("index_and_evaluate_job", "minilm"),
    ]
    assert set(source_row_counts(table_for(settings))) == {"alpha", "beta"}

    # A chunker setting changed: every source is chunked again (new chunk ids), and re-embedded.
    smaller = settings.model_copy(update={"chunk_max_tokens": 20, "chunk_overlap_tokens": 4})
    rechunked = build(smaller, instance)
    assert [job for job, _ in ran(rechunked)].count("ingest_source_job") == 2
    assert latest_metadata(instance, "document_chunks", "alpha")["documents_reused"] == 0


def test_a_step_whose_error_check_failed_last_time_runs_again(settings: Settings, instance: dg.DagsterInstance) -> None:
    build(settings, instance)
    # The latest document_chunks of alpha says its error check failed (as the asset records it),
    # at the current code version: only that check can be why the next build re-ingests alpha.
    code_version = build_definitions(settings).resolve_asset_graph().get(dg.AssetKey("document_chunks")).code_version
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            "document_chunks",
            partition="alpha",
            metadata=failed_error_checks([dg.AssetCheckResult(check_name="chunk_tokens_within_window", passed=False)]),
            tags={CODE_VERSION_TAG: str(code_version)},
        )
    )
    lines: list[str] = []
    report = run_build(build_definitions(settings), instance, settings.embedders, echo=lines.append)
    assert report.ok, report.failures
    assert ("ingest_source_job", "alpha") in ran(report) and ("ingest_source_job", "beta") not in ran(report)
    assert any("check chunk_tokens_within_window failed last time" in line for line in lines), lines


def test_edit_one_document_reembeds_only_its_changed_chunks(
    settings: Settings, instance: dg.DagsterInstance, data_dir: Path
) -> None:
    build(settings, instance)
    before = rows_by_chunk(settings)
    edited = data_dir / "sources" / "alpha" / "schedules.md"
    edited.write_text(edited.read_text() + "\n\nSchedules can also run on a timezone.", encoding="utf-8")

    report = build(settings, instance)
    # Only the edited source is read, chunked and embedded again; then the index follows.
    assert ran(report) == [
        ("ingest_source_job", "alpha"), ("embed_source_job", "minilm|alpha"), ("index_and_evaluate_job", "minilm"),
    ]
    after = rows_by_chunk(settings)
    chunked = latest_metadata(instance, "document_chunks", "alpha")
    assert (chunked["documents_rechunked"], chunked["documents_reused"]) == (1, 2)
    alpha = latest_metadata(instance, "chunk_embeddings", "minilm|alpha")
    assert alpha["embedded"] == 1  # the single chunk of the edited document
    assert alpha["rows_inserted"] == 1 and alpha["rows_deleted"] == 1
    # Untouched chunks keep their id, their row and the run that wrote them.
    unchanged = {key: row for key, row in before.items() if row["doc_key"] != "alpha/schedules.md"}
    assert all(after[key]["run_id"] == row["run_id"] for key, row in unchanged.items())
    assert len(after) == len(before)


def test_deleted_document_and_removed_source_leave_no_rows(
    settings: Settings, instance: dg.DagsterInstance, data_dir: Path
) -> None:
    build(settings, instance)
    (data_dir / "sources" / "alpha" / "notes" / "partitions.txt").unlink()
    build(settings, instance)
    doc_keys = {row["doc_key"] for row in rows_by_chunk(settings).values()}
    assert "alpha/notes/partitions.txt" not in doc_keys
    assert "alpha/retries.md" in doc_keys

    shutil.rmtree(data_dir / "sources" / "beta")
    build(settings, instance)
    assert set(source_row_counts(table_for(settings))) == {"alpha"}
    assert instance.get_dynamic_partitions("source") == ["alpha"]


def test_empty_source_folder_keeps_existing_rows_and_other_sources(
    settings: Settings, instance: dg.DagsterInstance, data_dir: Path
) -> None:
    # The guard of an emptied source, with the last good versions off (on, its emptied files' chunks
    # would stay as stale documents before the guard is reached).
    settings = settings.model_copy(update={"keep_last_good": False})
    (data_dir / "sources" / "gamma").mkdir()
    build(settings, instance)
    assert latest_metadata(instance, "source_documents", "gamma")["documents"] == 0
    counts = source_row_counts(table_for(settings))
    assert "gamma" not in counts and counts["alpha"] > 0 and counts["beta"] > 0

    for path in (data_dir / "sources" / "beta").iterdir():
        path.write_bytes(b"")  # every file of beta becomes empty: quarantined
    build(settings, instance)
    beta = latest_metadata(instance, "chunk_embeddings", "minilm|beta")
    assert beta["rows_kept_from_empty_source"] == counts["beta"]
    assert source_row_counts(table_for(settings)) == counts


def test_bad_files_are_quarantined_and_the_rest_is_indexed(
    settings: Settings, instance: dg.DagsterInstance, data_dir: Path
) -> None:
    alpha = data_dir / "sources" / "alpha"
    (alpha / "empty.md").write_text("", encoding="utf-8")
    (alpha / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (alpha / "corpus.jsonl").write_text(
        '{"_id": "d1", "title": "Good", "text": "A good corpus line about assets."}\n'
        '{"_id": "d2", "title": "Broken", "text": "missing brace"\n'
        '{"_id": "d3", "title": "", "text": "Another good line about jobs."}\n',
        encoding="utf-8",
    )
    build(settings, instance)
    documents = latest_metadata(instance, "source_documents", "alpha")
    assert documents["quarantined"] == 3
    quarantine = {(item["path"], item["line"]): item["reason"] for item in documents["quarantined_files"]}
    assert "empty file" in quarantine[("empty.md", None)]
    assert "not valid UTF-8" in quarantine[("latin1.txt", None)]
    assert "invalid JSON" in quarantine[("corpus.jsonl", 2)]
    doc_keys = {row["doc_key"] for row in rows_by_chunk(settings).values()}
    assert {"alpha/d1", "alpha/d3", "alpha/retries.md", "beta/sensors.html"} <= doc_keys
    assert "alpha/d2" not in doc_keys


def test_chunk_rows_carry_lineage(settings: Settings, instance: dg.DagsterInstance) -> None:
    build(settings, instance)
    rows = scan(table_for(settings), ["source", "doc_key", "doc_content_hash", "chunker_config", "embedder", "model", "run_id"])
    run_ids = {run.run_id for run in instance.get_runs()}
    for row in rows.to_pylist():
        assert row["doc_key"].startswith(row["source"] + "/")
        assert row["embedder"] == "minilm" and row["model"] == MINILM.model
        assert row["doc_content_hash"] and row["chunker_config"]
        assert row["run_id"] in run_ids


def test_unknown_source_is_a_clear_error(settings: Settings, instance: dg.DagsterInstance) -> None:
    with pytest.raises(ValueError, match="unknown source"):
        run_build(build_definitions(settings), instance, settings.embedders, sources=["nope"], echo=lambda _: None)


def test_an_empty_sources_folder_is_an_error_not_an_empty_index(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    (tmp_path / "data" / "sources").mkdir(parents=True)
    settings = Settings(data_dir=tmp_path / "data")
    with pytest.raises(ValueError, match=r"no source folders under .*/data/sources: put one folder per source there"):
        run_build(build_definitions(settings), instance, settings.embedders, echo=lambda _: None)
    assert sorted(path.name for path in (tmp_path / "data").iterdir()) == ["sources"]  # no empty table
