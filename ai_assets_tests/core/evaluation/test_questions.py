"""Offline eval questions: deterministic, with lineage, incremental by document version."""

from __future__ import annotations

from ai_assets.core.chunking.chunker import Chunk, ChunkerConfig, chunk_documents
from ai_assets.core.documents.model import Document, ParsedBlock, ParsedDocument, assemble_document
from ai_assets.core.embedding.tokenizer import minilm_tokenizer
from ai_assets.core.evaluation.questions import QuestionSettings, source_questions

TOPICS = {
    "retries.md": "Retries restart a failed run after exponential backoff with jitter; the max_retries tag caps attempts.",
    "schedules.md": "Schedules launch jobs at fixed times written as cron expressions; the daemon ticks them hourly.",
    "sensors.md": "Sensors poll storage buckets for new files and request runs; a cursor remembers processed keys.",
    "partitions.md": "Partitions split assets into daily slices; backfills materialize many slices in parallel workers.",
}


def document(path: str, text: str, source: str = "docs") -> Document:
    heading = path.split(".")[0].capitalize()
    parsed = ParsedDocument(title=f"{heading} guide", blocks=[ParsedBlock(text=f"{heading} in depth", section=f"{heading} in depth"), ParsedBlock(text=text * 3, section=f"{heading} in depth")])
    return assemble_document(parsed, source=source, path=path, size_bytes=len(text), mtime=0.0, fallback_title=path)


def chunks_of(documents: list[Document]) -> list[Chunk]:
    config = ChunkerConfig(tokenizer=minilm_tokenizer().name, max_tokens=64, overlap_tokens=8)
    return chunk_documents(documents, minilm_tokenizer(), config).chunks


SETTINGS = QuestionSettings(per_document=2, per_source=100)


def test_questions_are_deterministic_and_keep_their_lineage() -> None:
    chunks = chunks_of([document(path, text) for path, text in TOPICS.items()])
    first = source_questions("docs", chunks, [], set(), SETTINGS, run_id="run-1")
    again = source_questions("docs", chunks, [], set(), SETTINGS, run_id="run-1")
    assert first.questions == again.questions and first.too_small is None
    assert len(first.questions) == 2 * len(TOPICS)
    by_chunk = {chunk.chunk_id: chunk for chunk in chunks}
    for question in first.questions:
        chunk = by_chunk[question.chunk_id]
        assert (question.doc_key, question.doc_version, question.section) == (chunk.doc_key, chunk.doc_content_hash, chunk.section)
        assert question.run_id == "run-1" and question.generator == "known-item"
    assert {question.kind for question in first.questions} == {"terms", "heading"}
    capped = source_questions("docs", chunks, [], set(), QuestionSettings(per_document=2, per_source=3), "run-1")
    assert len(capped.questions) == 3


def test_an_edit_regenerates_only_its_document_a_deletion_drops_and_a_quarantine_keeps() -> None:
    documents = [document(path, text) for path, text in TOPICS.items()]
    first = source_questions("docs", chunks_of(documents), [], set(), SETTINGS, run_id="run-1")
    edited = document("retries.md", "Retries now wait for a fixed delay of thirty seconds between every attempt of a run.")
    # sensors.md deleted, partitions.md unreadable now (quarantined): neither has chunks any more.
    now = [edited, documents[1]]
    second = source_questions("docs", chunks_of(now), first.questions, {"docs/partitions.md"}, SETTINGS, run_id="run-2")
    by_document: dict[str, set[str]] = {}
    for question in second.questions:
        by_document.setdefault(question.doc_key, set()).add(question.run_id)
    assert by_document == {"docs/retries.md": {"run-2"}, "docs/schedules.md": {"run-1"}, "docs/partitions.md": {"run-1"}}
    assert (second.generated_documents, second.kept_documents, second.quarantined_documents) == (1, 1, 1)
    unchanged = [q for q in first.questions if q.doc_key == "docs/schedules.md"]
    assert [q for q in second.questions if q.doc_key == "docs/schedules.md"] == unchanged


def test_a_source_of_one_short_document_is_too_small_and_says_so() -> None:
    result = source_questions("tiny", chunks_of([document("only.md", "One short page.", "tiny")]), [], set(), SETTINGS, "run-1")
    assert result.questions == [] and result.too_small is not None
    assert "too small to sample" in result.too_small and "data/eval/" in result.too_small


def test_another_language_makes_questions_from_its_own_words() -> None:
    german = {
        "wiederholung.md": "Wiederholungen starten einen fehlgeschlagenen Lauf nach exponentieller Wartezeit erneut.",
        "zeitplan.md": "Zeitpläne starten Aufträge zu festen Zeiten, geschrieben als Cron-Ausdrücke für den Dienst.",
        "sensoren.md": "Sensoren prüfen Speicher auf neue Dateien und fordern Läufe an; ein Cursor merkt sich Schlüssel.",
    }
    japanese = {"jp.md": "センサーは新しいファイルを確認し、実行を要求します。カーソルは処理済みのキーを記憶します。"}
    chunks = chunks_of([document(path, text, "de") for path, text in {**german, **japanese}.items()])
    result = source_questions("de", chunks, [], set(), SETTINGS, run_id="run-1")
    term_queries = [q.text for q in result.questions if q.kind == "terms"]
    assert term_queries and all(word in " ".join(german.values()).casefold() for q in term_queries for word in q.split())
    assert {q.doc_key for q in result.questions} >= {f"de/{path}" for path in german}
    # Without spaces between words a "word" is a whole clause: too few terms, rejected with the reason.
    assert "de/jp.md" not in {q.doc_key for q in result.questions}
    assert any(r.doc_key == "de/jp.md" and r.reason.startswith("passage too short") for r in result.rejections)
