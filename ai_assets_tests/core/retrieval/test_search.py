"""Search over a real LanceDB table with the real model: the exact vector index, hybrid fusion
from id-and-score candidate lists, and the fetch of the winners' rows."""

from __future__ import annotations

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
from ai_assets.core.retrieval.fusion import DEFAULT_FUSION, Fusion
from ai_assets.core.retrieval.search import (
    HYBRID_CANDIDATES,
    Searcher,
    SearchHit,
    _clip_words,
    ann_recall_at_10,
    dense_search,
    fetch_hits,
    fts_scores,
    fts_search,
    hybrid_search,
    source_filter,
)
from ai_assets.core.store.indexes import EXACT_VECTOR_INDEX, VECTOR_INDEX, build_indexes
from ai_assets.core.store.tables import open_journal, open_table
from ai_assets.core.store.writes import sync_source_embeddings

CONFIG = ChunkerConfig(tokenizer=MINILM.model, max_tokens=48, overlap_tokens=8)
TOPICS = [
    "retries back off exponentially with jitter after a failed run",
    "a cron schedule launches the job every night at three",
    "sensors poll a bucket for new files and keep a cursor",
    "partitions split an asset by day and backfills fill them",
    "the vector index answers nearest neighbour queries over embeddings",
    "full-text search ranks passages by BM25 over their words",
    "lineage tells which run wrote a row and from which document",
    "freshness policies warn when an asset has not been updated",
]
QUERIES = [
    "how do retries back off",
    "nightly cron job",
    "which run wrote this row",
    "BM25 ranking of passages",
    "new files in a bucket",
    "zebra",  # matches no chunk's words: the full-text list is empty
]


def documents(source: str, count: int, variant: str = "") -> list[Document]:
    docs = []
    for number in range(count):
        first, second = TOPICS[number % len(TOPICS)], TOPICS[(number * 3 + 1) % len(TOPICS)]
        text = f"Note {number} of {source}{variant}: {first}. Also, {second}. Item {number} matters for {source}."
        docs.append(
            Document(
                doc_key=f"{source}/note{number}.md", source=source, path=f"note{number}.md", title=f"Note {number}",
                text=text, content_hash=content_hash(f"Note {number}", text), size_bytes=len(text), mtime=0.0,
            )
        )
    return docs


def chunks_of(docs: list[Document]) -> list[Chunk]:
    tokenizer = minilm_tokenizer()
    return [chunk for doc in docs for chunk in chunk_document(doc, tokenizer, CONFIG)]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return create_embedder("minilm")


def publish(table: Table, source: str, docs: list[Document], embedder: Embedder, run_id: str = "run-1") -> None:
    sync_source_embeddings(table, source, chunks_of(docs), embedder, run_id=run_id, journal=open_journal(table._conn, MINILM))


@pytest.fixture
def table(tmp_path: Path, embedder: Embedder) -> Table:
    table = open_table(lancedb.connect(str(tmp_path)), MINILM)
    publish(table, "alpha", documents("alpha", 24), embedder)
    publish(table, "beta", documents("beta", 16), embedder)
    build_indexes(table, ann_min_rows=50_000)
    return table


def fused_from_full_lists(
    table: Table, vector: np.ndarray, text: str, limit: int, where: str | None, fusion: Fusion
) -> list[SearchHit]:
    """Hybrid search as it was first written: both candidate lists read whole, then fused."""
    candidates = max(limit, HYBRID_CANDIDATES)
    dense = dense_search(table, vector, candidates, where)
    lexical = fts_search(table, text, candidates, where)
    by_id = {hit.chunk_id: hit for hit in [*lexical, *dense]}
    return [by_id[chunk_id].model_copy(update={"score": score}) for chunk_id, score in fusion.fuse(dense, lexical)[:limit]]


def assert_same_hits(found: list[SearchHit], expected: list[SearchHit], score_tolerance: float = 0.0) -> None:
    assert [hit.chunk_id for hit in found] == [hit.chunk_id for hit in expected]
    for hit, reference in zip(found, expected, strict=True):
        assert hit.model_dump(exclude={"score"}) == reference.model_dump(exclude={"score"})
        assert hit.score == pytest.approx(reference.score, abs=score_tolerance)


def test_small_tables_get_an_exact_vector_index_that_finds_what_a_scan_finds(table: Table, embedder: Embedder) -> None:
    indexes = {index.name: index for index in table.list_indices()}
    assert EXACT_VECTOR_INDEX in indexes and VECTOR_INDEX not in indexes
    assert ann_recall_at_10(table) is None  # no ANN: every search is exact
    rows = table.count_rows()

    def assert_exact(where: str | None = None) -> None:
        for vector in embedder.embed(QUERIES):
            # Every row ranked, so a single row missing or out of place would show.
            assert_same_hits(
                dense_search(table, vector, rows, where), dense_search(table, vector, rows, where, exact=True), 1e-6
            )

    assert_exact()
    assert_exact(source_filter(["beta"]))
    # Rows written after the index (edited, deleted, new) are searched exactly too, before
    # search_index folds them in.
    edited = documents("alpha", 20, variant=" (edited)")
    publish(table, "alpha", edited, embedder, run_id="run-2")
    publish(table, "gamma", documents("gamma", 5), embedder, run_id="run-2")
    assert any(index.num_unindexed_rows for index in table.list_indices() if index.name == EXACT_VECTOR_INDEX)
    rows = table.count_rows()
    assert_exact()
    assert_exact(source_filter(["alpha", "gamma"]))
    hits = dense_search(table, embedder.embed(["how do retries back off"])[0], rows)
    assert {hit.doc_key for hit in hits if hit.source == "alpha"} == {doc.doc_key for doc in edited}
    assert all(hit.run_id == "run-2" for hit in hits if hit.source == "alpha")

    assert build_indexes(table, ann_min_rows=50_000).changed  # folds the new rows in
    assert_exact()
    # Compaction ends with one fragment (LanceDB's compaction may take two passes after a merge),
    # the index rebuilt whole over it, and then nothing is left to do.
    reports = [build_indexes(table, ann_min_rows=50_000) for _ in range(3)]
    assert not reports[-1].changed and table.stats()["fragment_stats"]["num_fragments"] == 1
    exact_index = next(index for index in table.list_indices() if index.name == EXACT_VECTOR_INDEX)
    assert (exact_index.num_unindexed_rows, exact_index.num_segments) == (0, 1)
    assert_exact()


@pytest.mark.parametrize("fusion", [DEFAULT_FUSION, Fusion(method="rrf", dense_weight=0.5)], ids=["convex", "rrf"])
@pytest.mark.parametrize("limit", [3, 10, 250])  # 250: more than the candidates and than the table's rows
@pytest.mark.parametrize("sources", [None, ["beta"]])
def test_hybrid_equals_fusing_the_full_candidate_lists(
    table: Table, embedder: Embedder, fusion: Fusion, limit: int, sources: list[str] | None
) -> None:
    searcher = Searcher(table, embedder, fusion)
    where = source_filter(sources)
    for query in QUERIES:
        # Encoded alone, as search() encodes it (test_core_embedders: within cosine 1e-4 of batched).
        vector = searcher.encode_query(query)
        expected = fused_from_full_lists(table, vector, query, limit, where, fusion)
        assert expected
        assert_same_hits(searcher.search(query, mode="hybrid", limit=limit, sources=sources), expected, 1e-6)
        assert_same_hits(searcher.search(query, "hybrid", limit, sources, query_vector=vector), expected)
        assert_same_hits(hybrid_search(table, vector, query, limit, where, fusion), expected)
        if sources:
            assert {hit.source for hit in expected} == set(sources)


def test_given_query_vector_is_not_encoded_again(table: Table, embedder: Embedder) -> None:
    class CountingEmbedder(Embedder):
        def __init__(self, real: Embedder) -> None:
            self.spec, self.real, self.calls = real.spec, real, 0

        def count_tokens(self, texts):
            return self.real.count_tokens(texts)

        def _encode(self, texts, token_counts):
            self.calls += 1
            return self.real.embed(texts)

    counting = CountingEmbedder(embedder)
    searcher = Searcher(table, counting)
    vector = searcher.encode_query("nightly cron job")
    for mode in ("dense", "hybrid"):
        assert searcher.search("nightly cron job", mode, 5, query_vector=vector) == searcher.search("nightly cron job", mode, 5)
    assert counting.calls == 3  # once up front, once for each search without the vector
    with pytest.raises(ValueError, match="unknown search mode 'sparse'"):
        searcher.search("nightly cron job", mode="sparse")  # type: ignore[arg-type]
    assert counting.calls == 3


def test_fetch_finds_rows_whose_row_id_went_stale(table: Table) -> None:
    scored, row_ids = fts_scores(table, "which run wrote this row", 8)
    assert len(scored) == 8
    hits = fetch_hits(table, scored, row_ids)
    assert [(hit.chunk_id, hit.score) for hit in hits] == scored
    assert_same_hits(hits, fts_search(table, "which run wrote this row", 8))
    # Row ids from another table version point at other rows, or at none: those chunks are
    # found by chunk_id instead, in the same order and with the same score.
    others = [
        row_id.as_py()
        for chunk_id, row_id in zip(*table.search().select(["chunk_id"]).with_row_id(True).limit(None).to_arrow().columns)
        if chunk_id.as_py() not in row_ids
    ]
    stale = {chunk_id: others[index] if index % 2 else 2**40 + index for index, (chunk_id, _) in enumerate(scored[:4])}
    assert fetch_hits(table, scored, {**row_ids, **stale}) == hits
    assert fetch_hits(table, [], {}) == []


def test_a_query_longer_than_the_window_is_clipped_not_refused(table: Table, embedder: Embedder) -> None:
    searcher = Searcher(table, embedder)
    long_query = "  nightly   cron job\n" + " schedule" * 400
    clipped = _clip_words(long_query, embedder.max_text_tokens, embedder)
    assert 0 < embedder.count_tokens([clipped])[0] <= embedder.max_text_tokens
    assert np.allclose(searcher.encode_query(long_query), embedder.embed_query(clipped), atol=1e-6)
    assert np.allclose(searcher.encode_query("  nightly   cron job\n"), embedder.embed_query("nightly cron job"), atol=1e-6)
    for queries in (["  nightly   cron job\n", long_query], ["  nightly   cron job\n"]):
        expected = embedder.embed([_clip_words(query, embedder.max_text_tokens, embedder) for query in queries])
        assert np.allclose(searcher.encode_queries(queries), expected, atol=1e-6)
    assert searcher.search(long_query, "hybrid", 3)
