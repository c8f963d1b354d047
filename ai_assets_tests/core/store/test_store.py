"""The LanceDB store with the real model: crash safety, concurrent sources, model and config changes."""

from __future__ import annotations

import threading
from pathlib import Path

import lancedb
import numpy as np
import pytest
from lancedb.table import Table

from ai_assets.core.chunking.chunker import Chunk, ChunkerConfig, chunk_document
from ai_assets.core.documents.model import Document, content_hash
from ai_assets.core.embedding.base import MINILM, Embedder
from ai_assets.core.embedding.registry import create_embedder
from ai_assets.core.embedding.tokenizer import minilm_tokenizer
from ai_assets.core.retrieval.search import Searcher
from ai_assets.core.store.tables import TableMismatch, open_journal, open_table, scan, source_row_counts
from ai_assets.core.store.writes import sync_source_embeddings

CONFIG = ChunkerConfig(tokenizer=MINILM.model, max_tokens=40, overlap_tokens=8)


def documents(source: str, count: int, variant: str = "") -> list[Document]:
    docs = []
    for number in range(count):
        text = (
            f"Document {number} of {source} {variant}. It explains how {source} schedules work, "
            f"how retries back off, and why partitions number {number} matter for backfills."
        )
        docs.append(
            Document(
                doc_key=f"{source}/doc{number}.md", source=source, path=f"doc{number}.md", title=f"Doc {number}",
                text=text, content_hash=content_hash(f"Doc {number}", text), size_bytes=len(text), mtime=0.0,
            )
        )
    return docs


def chunks_of(docs: list[Document], config: ChunkerConfig = CONFIG) -> list[Chunk]:
    tokenizer = minilm_tokenizer()
    return [chunk for doc in docs for chunk in chunk_document(doc, tokenizer, config)]


class FailingEmbedder(Embedder):
    """The real model, failing on its n-th call: a crash halfway through a source."""

    def __init__(self, real: Embedder, fail_on_call: int) -> None:
        self.spec, self.real, self.fail_on_call, self.calls = real.spec, real, fail_on_call, 0

    def count_tokens(self, texts):
        return self.real.count_tokens(texts)

    def _encode(self, texts, token_counts):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("injected failure halfway through the source")
        return self.real.embed(texts)


def journal_beside(table: Table) -> Table:
    """The embedder's journal in the table's database, where LanceDBResource.journal opens it."""
    return open_journal(table._conn, MINILM)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return create_embedder("minilm")


def test_failure_halfway_leaves_the_previous_version_intact_and_searchable(tmp_path: Path, embedder: Embedder) -> None:
    db = lancedb.connect(str(tmp_path))
    table, journal = open_table(db, MINILM), open_journal(db, MINILM)
    first = chunks_of(documents("alpha", 6))
    sync_source_embeddings(table, "alpha", first, embedder, run_id="run-1", journal=journal)
    version, rows = table.version, source_row_counts(table)
    assert journal.count_rows() == 0  # published vectors leave the journal

    edited = chunks_of(documents("alpha", 6, variant="edited"))
    failing = FailingEmbedder(embedder, fail_on_call=2)
    with pytest.raises(RuntimeError, match="injected failure"):
        sync_source_embeddings(table, "alpha", edited, failing, run_id="run-2", batch_size=2, journal=journal)
    assert failing.calls == 2  # one batch embedded, then the crash
    assert table.version == version and source_row_counts(table) == rows
    hits = Searcher(table, embedder).search("how do retries back off", mode="hybrid", limit=3)
    assert hits and all(hit.run_id == "run-1" for hit in hits)
    assert journal.count_rows() == 2  # the batch paid for before the crash is kept

    result = sync_source_embeddings(table, "alpha", edited, embedder, run_id="run-3", journal=journal)
    new_texts = {chunk.text for chunk in edited} - {chunk.text for chunk in first}
    assert result.embedded == len(new_texts) - 2  # the journaled batch is not embedded again
    assert result.wrote and table.count_rows() == len(edited)
    assert set(scan(table, ["run_id"]).column("run_id").to_pylist()) == {"run-3"}
    assert journal.count_rows() == 0


def test_a_chunk_file_streams_in_batches_with_exact_rows(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ai_assets.core.chunking.chunk_files import write_chunk_file
    from ai_assets.core.store import writes

    # Batches of 4 chunks, so every pass (plan, embed, publish) crosses many batch boundaries;
    # the journal index is built too, as for a large source.
    monkeypatch.setattr(writes, "READ_BATCH", 4)
    monkeypatch.setattr(writes, "JOURNAL_INDEX_MIN_ROWS", 1)
    db = lancedb.connect(str(tmp_path / "db"))
    table, journal = open_table(db, MINILM), open_journal(db, MINILM)
    beta = chunks_of(documents("beta", 2))
    sync_source_embeddings(table, "beta", beta, embedder, run_id="run-beta", journal=journal)

    alpha = chunks_of(documents("alpha", 7))
    # beta's first text again, under alpha: reused from beta's rows, not embedded again.
    shared = beta[0].model_copy(update={"chunk_id": "alpha-shared", "source": "alpha", "doc_key": "alpha/shared.md"})
    chunk_file = write_chunk_file(tmp_path / "alpha.parquet", [*alpha, shared])
    assert [chunk for batch in chunk_file.batches(3) for chunk in batch] == [*alpha, shared]

    result = sync_source_embeddings(table, "alpha", chunk_file, embedder, run_id="run-1", journal=journal)
    assert (result.chunks, result.embedded, result.cache_hits) == (len(alpha) + 1, len(alpha), 1)
    rows = scan(table, ["chunk_id", "text", "vector"], "source = 'alpha'").to_pylist()
    assert sorted(row["chunk_id"] for row in rows) == sorted(chunk.chunk_id for chunk in [*alpha, shared])
    expected = embedder.embed([row["text"] for row in rows])
    np.testing.assert_allclose(np.array([row["vector"] for row in rows]), expected, atol=2e-3)
    assert journal.count_rows() == 0

    journal_version = journal.version
    again = sync_source_embeddings(table, "alpha", chunk_file, embedder, run_id="run-2", journal=journal)
    assert again.embedded == 0 and not again.wrote
    assert journal.version == journal_version  # an unchanged source writes nothing, not even to the journal

    # One document edited: a merge, to which unchanged rows are sent as keys only. They must
    # come out of it whole: text, lineage and vector as before.
    edited_docs = documents("alpha", 7)
    edited_docs[3] = documents("alpha", 7, variant="edited")[3]
    edited = chunks_of(edited_docs)
    before = {row["chunk_id"]: row for row in scan(table, ["chunk_id", "text", "run_id", "vector"]).to_pylist()}
    result = sync_source_embeddings(
        table, "alpha", write_chunk_file(tmp_path / "alpha.parquet", edited), embedder, run_id="run-3", journal=journal
    )
    assert result.wrote and result.deleted == 1 + sum(1 for chunk in alpha if chunk.doc_key == "alpha/doc3.md")
    rows = scan(table, ["chunk_id", "text", "run_id", "vector"], "source = 'alpha'").to_pylist()
    assert sorted(row["chunk_id"] for row in rows) == sorted(chunk.chunk_id for chunk in edited)
    for row in rows:
        assert row["text"] and row["vector"] is not None
        if row["chunk_id"] in before:
            assert row == before[row["chunk_id"]]  # untouched by the merge
        else:
            assert row["run_id"] == "run-3"
    np.testing.assert_allclose(
        np.array([row["vector"] for row in rows]), embedder.embed([row["text"] for row in rows]), atol=2e-3
    )


@pytest.mark.parametrize("round_number", range(3))
def test_concurrent_sources_leave_no_duplicate_and_no_missing_row(
    tmp_path: Path, embedder: Embedder, round_number: int
) -> None:
    uri = str(tmp_path / f"db{round_number}")
    open_table(lancedb.connect(uri), MINILM)
    sources = {f"source{index}": chunks_of(documents(f"source{index}", 4 + index)) for index in range(4)}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(sources))

    def publish(source: str, chunks: list[Chunk]) -> None:
        try:
            table = open_table(lancedb.connect(uri), MINILM)  # one connection per writer, as in separate runs
            vectors_ready = embedder.embed([chunk.text for chunk in chunks[:1]])
            assert vectors_ready.shape[0] == 1
            barrier.wait(timeout=60)
            sync_source_embeddings(table, source, chunks, embedder, run_id=f"run-{source}", journal=journal_beside(table))
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=publish, args=item) for item in sources.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    table = open_table(lancedb.connect(uri), MINILM)
    ids = scan(table, ["chunk_id"]).column("chunk_id").to_pylist()
    assert len(ids) == len(set(ids))
    assert set(ids) == {chunk.chunk_id for chunks in sources.values() for chunk in chunks}
    assert source_row_counts(table) == {source: len(chunks) for source, chunks in sources.items()}


def test_another_model_or_dimension_is_refused(tmp_path: Path) -> None:
    db = lancedb.connect(str(tmp_path))
    open_table(db, MINILM)
    other = MINILM.model_copy(update={"dimensions": 768, "model": "some/other-model"})
    with pytest.raises(TableMismatch, match="dimensions: table has '384', embedder has '768'"):
        open_table(db, other)


def test_vectors_of_the_wrong_shape_are_refused(tmp_path: Path, embedder: Embedder) -> None:
    class WrongShape(Embedder):
        spec = MINILM

        def count_tokens(self, texts):
            return embedder.count_tokens(texts)

        def _encode(self, texts, token_counts):
            return np.zeros((len(texts), 768), dtype=np.float32)

    table = open_table(lancedb.connect(str(tmp_path)), MINILM)
    with pytest.raises(ValueError, match=r"expected \(\d+, 384\)"):
        sync_source_embeddings(table, "alpha", chunks_of(documents("alpha", 2)), WrongShape(), run_id="run", journal=journal_beside(table))
    assert table.count_rows() == 0


def test_changed_chunker_config_replaces_every_chunk_cleanly(tmp_path: Path, embedder: Embedder) -> None:
    table = open_table(lancedb.connect(str(tmp_path)), MINILM)
    docs = documents("alpha", 5)
    sync_source_embeddings(table, "alpha", chunks_of(docs), embedder, run_id="run-1", journal=journal_beside(table))
    smaller = ChunkerConfig(tokenizer=MINILM.model, max_tokens=20, overlap_tokens=4)
    rechunked = chunks_of(docs, smaller)
    result = sync_source_embeddings(table, "alpha", rechunked, embedder, run_id="run-2", journal=journal_beside(table))
    assert result.inserted == len(rechunked) and result.deleted > 0
    configs = set(scan(table, ["chunker_config"]).column("chunker_config").to_pylist())
    assert configs == {smaller.config_hash}
    assert table.count_rows() == len(rechunked)


def test_empty_source_keeps_rows_unless_allowed(tmp_path: Path, embedder: Embedder) -> None:
    table = open_table(lancedb.connect(str(tmp_path)), MINILM)
    sync_source_embeddings(table, "alpha", chunks_of(documents("alpha", 3)), embedder, run_id="run-1", journal=journal_beside(table))
    sync_source_embeddings(table, "beta", chunks_of(documents("beta", 2)), embedder, run_id="run-1", journal=journal_beside(table))
    counts = source_row_counts(table)
    kept = sync_source_embeddings(table, "alpha", [], embedder, run_id="run-2", journal=journal_beside(table))
    assert kept.kept_rows == counts["alpha"] and not kept.wrote
    assert source_row_counts(table) == counts
    wiped = sync_source_embeddings(table, "alpha", [], embedder, run_id="run-3", allow_empty=True, journal=journal_beside(table))
    assert wiped.deleted == counts["alpha"]
    assert source_row_counts(table) == {"beta": counts["beta"]}


def test_ann_index_above_the_threshold_keeps_recall(tmp_path: Path) -> None:
    from ai_assets.core.retrieval.search import ann_recall_at_10, dense_search
    from ai_assets.core.store.indexes import EXACT_VECTOR_INDEX, VECTOR_INDEX, build_indexes
    from ai_assets.core.store.writes import chunk_rows

    table = open_table(lancedb.connect(str(tmp_path)), MINILM)
    base = chunks_of(documents("alpha", 3))
    rows = 3000
    chunks = [base[i % len(base)].model_copy(update={"chunk_id": f"c{i}"}) for i in range(rows)]
    # Clustered, like real embeddings: 60 topics, each vector a noisy copy of its topic.
    generator = np.random.default_rng(1)
    topics = generator.standard_normal((60, MINILM.dimensions)).astype(np.float32)
    vectors = topics[np.arange(rows) % 60] + 0.6 * generator.standard_normal((rows, MINILM.dimensions)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    table.add(chunk_rows(chunks, vectors, MINILM, run_id="run"))

    below = build_indexes(table, ann_min_rows=rows + 1)
    assert VECTOR_INDEX not in below.indexes and ann_recall_at_10(table) is None
    assert EXACT_VECTOR_INDEX in below.indexes  # exact search, from memory
    searcher = Searcher(table, create_embedder("minilm"))  # one that outlives the index change
    searcher.search("how retries back off", "dense", 3, query_vector=vectors[11])
    assert searcher._ann_index == (table.version, False)
    above = build_indexes(table, ann_min_rows=rows)
    assert VECTOR_INDEX in above.indexes and above.changed
    # The searcher reads the new table version and finds the ANN index (its lookup is cached per version).
    assert searcher.search("how retries back off", "hybrid", 10, query_vector=vectors[11])[0].chunk_id == "c11"
    assert searcher._ann_index == (table.version, True)
    assert EXACT_VECTOR_INDEX not in above.indexes  # replaced by the ANN index
    recall = ann_recall_at_10(table)
    assert recall is not None and recall >= 0.9, recall
    exact = dense_search(table, vectors[7], 1, exact=True)
    assert exact[0].chunk_id == "c7" and exact[0].score == pytest.approx(1.0, abs=1e-5)
    # Hybrid through the ANN index: its own dense candidate list, fused as the full lists would be.
    from ai_assets.core.retrieval.fusion import DEFAULT_FUSION
    from ai_assets.core.retrieval.search import HYBRID_REFINE_FACTOR, fts_search, hybrid_search

    hits = hybrid_search(table, vectors[11], "how retries back off", 10)
    dense = dense_search(table, vectors[11], 100, refine_factor=HYBRID_REFINE_FACTOR)
    fused = DEFAULT_FUSION.fuse(dense, fts_search(table, "how retries back off", 100))[:10]
    assert [(hit.chunk_id, hit.score) for hit in hits] == fused and hits[0].chunk_id == "c11"
    assert not build_indexes(table, ann_min_rows=rows).changed  # nothing new: nothing written
    # An ANN index of an older kind (IVF-PQ, which this project built before HNSW-SQ) is replaced.
    from lancedb.index import IvfPq

    from ai_assets.core.store.indexes import ANN_INDEX_TYPE

    table.create_index("vector", config=IvfPq(distance_type="cosine", num_partitions=8, num_sub_vectors=48), name=VECTOR_INDEX, replace=True)
    assert build_indexes(table, ann_min_rows=rows).changed
    assert {index.name: index.index_type for index in table.list_indices()}[VECTOR_INDEX] == ANN_INDEX_TYPE


def test_text_over_the_window_is_refused_not_truncated(embedder: Embedder) -> None:
    from ai_assets.core.embedding.base import InputTooLong

    long_text = " ".join(f"word{i}" for i in range(400))
    with pytest.raises(InputTooLong, match=r"1 text\(s\) exceed the .* window of 254 tokens \(first: text #1 has \d+ tokens\)"):
        embedder.embed(["short", long_text])
    vectors, counts = embedder.embed_counted(["short text"])
    assert vectors.shape == (1, 384) and counts == [2]
