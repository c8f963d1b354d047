"""Asset checks: real builds that pass them, and injected faults that fail them."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from ai_assets.build import run_build
from ai_assets.core.chunking.chunker import Chunk
from ai_assets.core.quality import chunk_quality, count_mismatches, quality_gate_failures, vector_quality
from ai_assets.core.store.tables import scan
from ai_assets.definitions import build_definitions
from ai_assets.history import latest_metadata
from ai_assets.settings import Settings
from ai_assets_tests.test_assets_pipeline import build, table_for


def latest_check(
    instance: dg.DagsterInstance, asset: str, check: str, partition: str | None = None
) -> dg.AssetCheckEvaluation:
    """The newest evaluation of a check (of one partition, when given)."""
    history = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey(asset), check), limit=50
    )
    for record in history:
        event = record.event
        assert event is not None and event.dagster_event is not None
        evaluation = event.dagster_event.event_specific_data
        if partition is None or evaluation.partition == partition:  # type: ignore[union-attr]
            return evaluation  # type: ignore[return-value]
    raise AssertionError(f"{asset}:{check} never ran for partition {partition}")


def test_clean_build_passes_every_check(settings: Settings, instance: dg.DagsterInstance) -> None:
    build(settings, instance)
    sources, embedded = ["alpha", "beta"], ["minilm|alpha", "minilm|beta"]
    for asset, check, partitions in [
        ("source_documents", "quarantine_empty", sources),
        ("document_chunks", "chunks_not_empty_or_duplicate", sources),
        ("document_chunks", "chunk_tokens_within_window", sources),
        ("chunk_embeddings", "vectors_valid", embedded),
        ("chunk_embeddings", "table_model_matches", embedded),
        ("search_index", "index_rows_match_chunks", ["minilm"]),
        ("retrieval_evaluation", "retrieval_quality_gate", ["minilm"]),
    ]:
        for partition in partitions:
            assert latest_check(instance, asset, check, partition).passed, (asset, check, partition)


def test_quarantined_file_fails_the_warning_check(
    settings: Settings, instance: dg.DagsterInstance, data_dir: Path
) -> None:
    (data_dir / "sources" / "beta" / "image.html").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (data_dir / "sources" / "beta" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # not a document: skipped
    messages: list[str] = []
    report = run_build(build_definitions(settings), instance, settings.embedders, echo=messages.append)
    assert report.ok, report.failures  # a warning does not fail the build
    # The terminal says what was left out, and where the names are.
    assert (report.quarantined_files, report.skipped_files) == (1, 1)
    assert any(
        message.startswith("    2 documents read, 1 file(s) quarantined, 1 skipped; names and reasons: "
                           "source_documents metadata of run ")
        for message in messages
    ), messages
    evaluation = latest_check(instance, "source_documents", "quarantine_empty", partition="beta")
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "binary file" in evaluation.metadata["files"].value


def test_rows_left_from_an_emptied_source_fail_the_row_count_check(
    settings: Settings, instance: dg.DagsterInstance, data_dir: Path
) -> None:
    # Emptied files are unreadable ("empty file"): by default their last good chunks would stay,
    # stale; with the setting off they leave the index, and the rows no longer match.
    settings = settings.model_copy(update={"keep_last_good": False})
    build(settings, instance)
    for path in (data_dir / "sources" / "beta").iterdir():
        path.write_text("   ", encoding="utf-8")
    build(settings, instance)
    evaluation = latest_check(instance, "search_index", "index_rows_match_chunks")
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "| beta | 0 |" in evaluation.metadata["mismatches"].value


def chunk(chunk_id: str, text: str, tokens: int) -> Chunk:
    return Chunk(
        chunk_id=chunk_id, source="s", doc_key="s/d", doc_path="d", doc_title="d", doc_content_hash="h",
        chunk_index=0, char_start=0, char_end=len(text), token_count=tokens, text=text, chunker_config="c",
    )


def test_chunk_quality_finds_empty_duplicate_and_oversized_chunks() -> None:
    quality = chunk_quality([chunk("a", "ok", 3), chunk("b", "  ", 1), chunk("a", "ok", 3), chunk("c", "long", 300)], 254)
    assert quality.empty == ["b"] and quality.duplicates == ["a"] and quality.over_window == [("c", 300)]
    assert chunk_quality([chunk("a", "ok", 3)], 254).ok


@pytest.mark.parametrize(
    ("vectors", "field"),
    [
        (np.array([[np.nan, 0.0, 0.0]], dtype=np.float32), "non_finite"),
        (np.array([[0.5, 0.0, 0.0]], dtype=np.float32), "bad_norm"),
        (np.ones((2, 4), dtype=np.float32) / 2.0, "wrong_dimensions"),
    ],
)
def test_vector_quality_flags_each_problem(vectors: np.ndarray, field: str) -> None:
    quality = vector_quality(vectors, dimensions=3, normalized=True)
    assert getattr(quality, field) > 0 and not quality.ok
    assert vector_quality(np.array([[0.6, 0.8, 0.0]], dtype=np.float32), 3, True).ok


def test_count_mismatches_and_gate() -> None:
    assert count_mismatches({"a": 3, "b": 2}, {"a": 3, "c": 1}) == {"b": (2, 0), "c": (0, 1)}
    current = [{"eval_set": "x", "mode": "dense", "ndcg@10": 0.50}]
    assert quality_gate_failures(current, [{"eval_set": "x", "mode": "dense", "ndcg@10": 0.51}], "ndcg@10", 0.1, 0.02) == []
    dropped = quality_gate_failures(
        current, [{"eval_set": "x", "mode": "dense", "ndcg@10": 0.60}], "ndcg@10", 0.1, 0.02, baseline="the served version (v3)"
    )
    assert len(dropped) == 1 and dropped[0].limit == pytest.approx(0.60)
    assert "dropped more than 0.02 below the served version (v3)" in dropped[0].describe()
    assert quality_gate_failures(current, [], "ndcg@10", 0.6, 0.02)[0].reason == "below the floor"


BAD_FILES: dict[str, tuple[str, bytes, str]] = {
    # kind: (file name, bytes, reason shown)
    "binary": ("logo.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
    "invalid_utf8": ("latin1.txt", "caf\xe9 cr\xe8me br\xfbl\xe9e".encode("latin-1"), "not valid UTF-8"),
    "empty": ("empty.rst", b"", "empty file"),
    "oversized": ("huge.txt", b"word " * 400, "over the limit of 1000 bytes"),
    "broken_html": ("page.html", b"<p>Kept?</p><script>var x = 1; <p>lost text</p>", "broken HTML"),
    "malformed_jsonl": ("corpus.jsonl", b'{"_id": "ok", "text": "fine line"}\n{"_id": "bad", "text": \n', "invalid JSON"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_each_kind_of_bad_file_is_quarantined_with_a_warning_and_the_rest_indexed(
    kind: str, settings: Settings, instance: dg.DagsterInstance, data_dir: Path
) -> None:
    name, content, reason = BAD_FILES[kind]
    (data_dir / "sources" / "alpha" / name).write_bytes(content)
    limited = settings.model_copy(update={"max_document_bytes": 1000})
    build(limited, instance)
    evaluation = latest_check(instance, "source_documents", "quarantine_empty", partition="alpha")
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert latest_check(instance, "source_documents", "quarantine_empty", partition="beta").passed
    listed = evaluation.metadata["files"].value
    assert name in listed and reason in listed, listed
    doc_keys = set(scan(table_for(limited), ["doc_key"]).column("doc_key").to_pylist())
    assert {"alpha/retries.md", "alpha/schedules.md", "alpha/notes/partitions.txt"} <= doc_keys
    assert not any(key.startswith(f"alpha/{name}") for key in doc_keys)
    if kind == "malformed_jsonl":
        assert "alpha/ok" in doc_keys  # the good line of the same file is indexed


def test_an_evaluation_that_finds_no_eval_set_where_the_last_one_scored_fails(
    settings: Settings, instance: dg.DagsterInstance, data_dir: Path
) -> None:
    build(settings, instance)
    # The eval folder gone (an unmounted drive, a wrong prefix): never an empty, green gate.
    (data_dir / "eval").rename(data_dir / "eval.unmounted")
    definitions = build_definitions(settings)
    job = definitions.resolve_job_def("index_and_evaluate_job")
    failed = job.execute_in_process(instance=instance, partition_key="minilm", raise_on_error=False)
    assert not failed.success
    messages = [
        event.step_failure_data.error.message
        for event in failed.all_events
        if event.is_step_failure and event.step_failure_data.error is not None
    ]
    assert any(f"no eval set found under {data_dir / 'eval'}" in message for message in messages), messages
    # The failed run recorded no evaluation: the latest is still the one that scored.
    assert latest_metadata(instance, "retrieval_evaluation", "minilm")["hand_written_eval_sets"] == 1
    # Removed on purpose: said explicitly, it passes with nothing scored.
    allowed = job.execute_in_process(
        instance=instance,
        partition_key="minilm",
        run_config={"ops": {"retrieval_evaluation_and_served_index": {"config": {"allow_no_eval_sets": True}}}},
    )
    assert allowed.success
    assert latest_metadata(instance, "retrieval_evaluation", "minilm")["hand_written_eval_sets"] == 0
