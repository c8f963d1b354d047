"""Dense, full-text and hybrid (fused) search over an embedder's table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future

import numpy as np
import pyarrow as pa
from lancedb.query import AsyncFTSQuery, MatchQuery
from lancedb.table import AsyncTable, Table

from ai_assets.core.chunking.chunker import ChunkReference
from ai_assets.core.documents.model import SECTION_SEPARATOR
from ai_assets.core.embedding.base import Embedder, InputTooLong
from ai_assets.core.evaluation.metrics import rank_by_score
from ai_assets.core.retrieval.filters import all_of
from ai_assets.core.retrieval.filters import source_condition as source_filter
from ai_assets.core.retrieval.fusion import DEFAULT_FUSION, Fusion, ScoredId
from ai_assets.core.retrieval.modes import SEARCH_MODES, SearchMode
from ai_assets.core.store.async_tables import async_table, run, start
from ai_assets.core.store.indexes import VECTOR_INDEX
from ai_assets.core.store.tables import fixed_list_to_numpy, sql_literal

# ANN settings, used once search_index has built the HNSW-SQ index (large tables only). The
# index compares 8-bit quantized vectors, whose error reorders near ties: a dense top 10 is
# re-ranked by exact distance from 5x candidates (50 random vector reads), which took recall@10
# against exact search from 0.906 to 1.000 on the 100,000-row bench table for ~3 ms. Probes
# matter only past a million rows (one HNSW graph per million, see store.py).
ANN_NPROBES = 20
ANN_REFINE_FACTOR: int | None = 5
# Each side of a hybrid search contributes at least this many candidates to the fusion.
HYBRID_CANDIDATES = 100
# Hybrid's 100 dense candidates are re-ranked 1x: the index's own candidates (recall@100 0.983),
# given their exact cosines. The fusion weighs those scores, and with the quantized ones only 6 of
# the 50 msmarco queries kept the top 10 that exact candidates give (mean overlap 0.874); exact
# scores took that to 46 (0.974) for ~2-3 ms, and 2x to 49 (0.980) for ~5 ms.
HYBRID_REFINE_FACTOR: int | None = 1

_HIT_COLUMNS = [
    "chunk_id", "source", "doc_key", "doc_path", "doc_title", "doc_content_hash",
    "chunk_index", "section", "page", "page_end", "text", "run_id",
]


class SearchHit(ChunkReference):
    """A retrieved chunk; ``section``, ``page`` and ``page_end`` (from ``ChunkReference``) say
    where in its document it is, for citations."""

    run_id: str
    score: float

    @property
    def citation(self) -> str:
        """Where the hit is, as a reader would look it up: ``title · section · p. N`` (or ``pp. N-M``)."""
        return citation(self.doc_title or self.doc_key, self.section, self.page, self.page_end)


def citation(document: str, section: str | None, page: int | None, page_end: int | None) -> str:
    """The one label `ask`, `search` and `trace` cite a passage by: the document (its title, else
    its key), the section without the headings that only repeat the title, the pages."""
    parts = [document]
    headings = section.split(SECTION_SEPARATOR) if section else []
    while headings and headings[0].strip() == document.strip():
        headings.pop(0)
    if headings:
        parts.append(SECTION_SEPARATOR.join(headings))
    if page is not None:
        parts.append(f"p. {page}" if page_end in (None, page) else f"pp. {page}-{page_end}")
    return " · ".join(parts)


def has_ann_index(table: Table) -> bool:
    return run(_lists_ann_index(async_table(table)))


async def _lists_ann_index(table: AsyncTable) -> bool:
    return VECTOR_INDEX in {index.name for index in await table.list_indices()}


async def _dense_rows(
    table: AsyncTable,
    query_vector: np.ndarray,
    limit: int,
    where: str | None,
    exact: bool,
    refine_factor: int | None,
    ann: bool,
) -> pa.Table:
    """Hit columns and ``_distance`` of the nearest rows; ``ann``: whether the table has the ANN
    index (looked up by the caller: the sync API cannot be called from inside the event loop)."""
    query = table.query().nearest_to(query_vector).column("vector").distance_type("cosine")
    if exact:
        query = query.bypass_vector_index()
    elif ann:
        # Only the ANN index needs re-ranking: the exact index holds the vectors themselves,
        # and re-ranking would read every candidate's vector from the data files again.
        query = query.nprobes(ANN_NPROBES)
        if refine_factor:
            query = query.refine_factor(refine_factor)
    if where:
        query = query.where(where)  # a vector query filters before the search unless told postfilter()
    return await query.select([*_HIT_COLUMNS, "_distance"]).limit(limit).to_arrow()


def _fts_query(table: AsyncTable, query_text: str, where: str | None) -> AsyncFTSQuery:
    query = table.query().nearest_to_text(MatchQuery(query_text, "text"))
    if where:
        query = query.where(where)
    return query


def _cosine(row: dict) -> float:
    return 1.0 - float(row["_distance"])


def dense_search(
    table: Table,
    query_vector: np.ndarray,
    limit: int,
    where: str | None = None,
    exact: bool = False,
    refine_factor: int | None = ANN_REFINE_FACTOR,
    ann: bool | None = None,
) -> list[SearchHit]:
    """Cosine search, through the ANN index when the table has one (unless ``exact``); score = cosine.
    ``ann``: whether the table has the ANN index, when the caller knows."""
    ann = not exact and (has_ann_index(table) if ann is None else ann)
    rows = run(_dense_rows(async_table(table), query_vector, limit, where, exact, refine_factor, ann)).to_pylist()
    return [_hit(row, _cosine(row)) for row in rows]


def fts_search(table: Table, query_text: str, limit: int, where: str | None = None) -> list[SearchHit]:
    """BM25 over chunk text. The query is matched as words, never parsed as query syntax."""
    if not query_text.strip():
        return []
    rows = run(_fts_query(async_table(table), query_text, where).select([*_HIT_COLUMNS, "_score"]).limit(limit).to_arrow())
    return [_hit(row, float(row["_score"])) for row in rows.to_pylist()]


def fts_scores(
    table: Table, query_text: str, limit: int, where: str | None = None
) -> tuple[list[ScoredId], dict[str, int]]:
    """``fts_search``'s ranking as (chunk_id, BM25) pairs and each chunk's row id: no other column is read."""
    return _scored_ids(run(_fts_scores(async_table(table), query_text, limit, where)))


async def _fts_scores(table: AsyncTable, query_text: str, limit: int, where: str | None) -> pa.Table | None:
    if not query_text.strip():
        return None
    return await _fts_query(table, query_text, where).select(["chunk_id", "_score"]).with_row_id().limit(limit).to_arrow()


def _scored_ids(rows: pa.Table | None) -> tuple[list[ScoredId], dict[str, int]]:
    if rows is None:
        return [], {}
    ids = rows.column("chunk_id").to_pylist()
    scored = [(chunk_id, float(score)) for chunk_id, score in zip(ids, rows.column("_score").to_pylist(), strict=True)]
    return scored, dict(zip(ids, rows.column("_rowid").to_pylist(), strict=True))


def _hit(row: dict, score: float) -> SearchHit:
    return SearchHit(**{name: row[name] for name in _HIT_COLUMNS}, score=score)


def fetch_hits(table: Table, scored: Sequence[ScoredId], row_ids: dict[str, int]) -> list[SearchHit]:
    """The rows of ``scored`` chunks as hits, in that order, fetched by row id in one read.

    A row id is only valid in the table version that returned it; a chunk whose row is not at
    its id any more (the table moved on between the search and the fetch) is looked up by id.
    """
    if not scored:
        return []
    wanted = [chunk_id for chunk_id, _ in scored]
    rows = table.take_row_ids([row_ids[chunk_id] for chunk_id in wanted]).select(_HIT_COLUMNS).to_arrow().to_pylist()
    by_id = {row["chunk_id"]: row for row in rows}
    moved = [chunk_id for chunk_id in wanted if chunk_id not in by_id]
    if moved:
        condition = f"chunk_id IN ({', '.join(sql_literal(chunk_id) for chunk_id in moved)})"
        by_id.update(
            (row["chunk_id"], row)
            for row in table.search().where(condition).select(_HIT_COLUMNS).limit(len(moved)).to_arrow().to_pylist()
        )
    return [_hit(by_id[chunk_id], score) for chunk_id, score in scored if chunk_id in by_id]


def fetch_chunk(table: Table, chunk_id: str, where: str | None = None) -> SearchHit | None:
    """One chunk row by id (score 0: it was not retrieved by a query); ``where``: a condition it must
    meet too (a caller's scope), else None as if it did not exist."""
    condition = all_of(f"chunk_id = {sql_literal(chunk_id)}", where)
    rows = table.search().where(condition).select(_HIT_COLUMNS).limit(1).to_arrow()
    return _hit(rows.to_pylist()[0], 0.0) if rows.num_rows else None


def fetch_document(table: Table, doc_key: str, where: str | None = None) -> list[SearchHit]:
    """Every chunk row of one document, in document order (score 0); ``where`` as in ``fetch_chunk``."""
    condition = all_of(f"doc_key = {sql_literal(doc_key)}", where)
    rows = table.search().where(condition).select(_HIT_COLUMNS).limit(table.count_rows(condition) or 1).to_arrow()
    return sorted((_hit(row, 0.0) for row in rows.to_pylist()), key=lambda hit: hit.chunk_index)


def hybrid_search(
    table: Table,
    query_vector: np.ndarray,
    query_text: str,
    limit: int,
    where: str | None = None,
    fusion: Fusion = DEFAULT_FUSION,
) -> list[SearchHit]:
    ann = start(_lists_ann_index(async_table(table)))  # looked up on the search loop, meanwhile
    return _hybrid(table, lambda: query_vector, query_text, limit, where, fusion, ann)


def _hybrid(
    table: Table,
    query_vector: Callable[[], np.ndarray],
    query_text: str,
    limit: int,
    where: str | None,
    fusion: Fusion,
    ann: Future[bool],
) -> list[SearchHit]:
    """Fusion of the dense and full-text candidate lists; ``ann``: whether the table has the ANN index.

    The full-text search starts on the search loop before the query is encoded, so it runs
    meanwhile. Its list carries ids and scores only: the rows of the few of its candidates that
    win without being dense candidates too (rare when the fusion favours dense scores) are read
    afterwards, in one read. The dense list carries whole rows: one query that reads its
    candidates' columns costs less than a second query for the winners' rows.
    """
    candidates = max(limit, HYBRID_CANDIDATES)
    reader = async_table(table)
    lexical_future = start(_fts_scores(reader, query_text, candidates, where))
    vector = query_vector()
    dense_rows = run(
        _dense_rows(
            reader, vector, candidates, where, exact=False, refine_factor=HYBRID_REFINE_FACTOR, ann=ann.result()
        )
    ).to_pylist()
    lexical, lexical_row_ids = _scored_ids(lexical_future.result())
    rows = {row["chunk_id"]: row for row in dense_rows}
    fused = fusion.fuse_scores([(row["chunk_id"], _cosine(row)) for row in dense_rows], lexical)[:limit]
    text_only = {hit.chunk_id: hit for hit in fetch_hits(table, [pair for pair in fused if pair[0] not in rows], lexical_row_ids)}
    return [
        _hit(rows[chunk_id], score) if chunk_id in rows else text_only[chunk_id]
        for chunk_id, score in fused
        if chunk_id in rows or chunk_id in text_only
    ]


class Searcher:
    """Runs queries of any mode against one embedder's table."""

    def __init__(self, table: Table, embedder: Embedder, fusion: Fusion = DEFAULT_FUSION) -> None:
        self.table = table
        self.embedder = embedder
        self.fusion = fusion
        self._ann_index: tuple[int, bool] | None = None  # (table version, whether it has the ANN index)

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Vectors of many queries in batches (an evaluation's); ``encode_query`` for one. As
        there, the window check counts the tokens, and only a batch it refuses is clipped."""
        texts = [_whitespace_normalized(query) for query in queries]
        try:
            return self.embedder.embed(texts)
        except InputTooLong:
            return self.embedder.embed([self.clipped(text) for text in texts])

    def encode_query(self, query: str) -> np.ndarray:
        """The vector of one query, by the embedder's path for a lone text (see ``Embedder.embed_query``).

        Its window check counts the tokens; only a query it refuses is clipped (counted again per
        cut), so a short query, the usual one, is counted once on the search's hot path.
        """
        text = _whitespace_normalized(query)
        try:
            return self.embedder.embed_query(text)
        except InputTooLong:
            return self.embedder.embed_query(self.clipped(text))

    def clipped(self, query: str) -> str:
        """The query as the model reads it: itself when it fits the window; else cut to its first
        words rather than refused, since it only steers the search (queries are short)."""
        return _clip_words(query, self.embedder.max_text_tokens, self.embedder)

    def search(
        self,
        query: str,
        mode: SearchMode = "hybrid",
        limit: int = 10,
        sources: Sequence[str] | None = None,
        query_vector: np.ndarray | None = None,
        where: str | None = None,
    ) -> list[SearchHit]:
        """``query_vector``: the query already encoded (by ``encode_query``), so it is not encoded again;
        ``where``: a LanceDB condition the chunks must meet besides ``sources`` (``SearchFilters.where``)."""
        if mode not in SEARCH_MODES:
            raise ValueError(f"unknown search mode {mode!r}; choose one of {', '.join(SEARCH_MODES)}")
        where = all_of(source_filter(sources), where)
        if mode == "fts":
            return fts_search(self.table, query, limit, where)

        def vector() -> np.ndarray:
            return self.encode_query(query) if query_vector is None else query_vector

        # Looked up on the search loop while the query is encoded: through the sync API, reading
        # the table version alone took 0.9 ms p50 (3.8 ms p95) here, before anything else started.
        ann = start(self._has_ann_index(async_table(self.table)))
        if mode == "dense":
            return dense_search(self.table, vector(), limit, where, ann=ann.result())
        return _hybrid(self.table, vector, query, limit, where, self.fusion, ann)

    async def _has_ann_index(self, table: AsyncTable) -> bool:
        # Indexes change only with the table version, which costs less to read than the index list.
        version = await table.version()
        if self._ann_index is None or self._ann_index[0] != version:
            self._ann_index = (version, await _lists_ann_index(table))
        return self._ann_index[1]


def _whitespace_normalized(query: str) -> str:
    # What clipping yields for a short query, so a clipped and an unclipped query read alike.
    return " ".join(query.split())


def _clip_words(text: str, max_tokens: int, embedder: Embedder) -> str:
    words = text.split()
    while words and embedder.count_tokens([" ".join(words)])[0] > max_tokens:
        words = words[: max(1, int(len(words) * 0.9))] if len(words) > 1 else []
    return " ".join(words)


def document_ranking(hits: Sequence[SearchHit]) -> list[tuple[str, float]]:
    """Documents ranked by their best chunk (max over a document's chunks)."""
    best: dict[str, float] = {}
    for hit in hits:
        if hit.doc_key not in best or hit.score > best[hit.doc_key]:
            best[hit.doc_key] = hit.score
    return rank_by_score(best)


def ann_recall_at_10(
    table: Table, sample: int = 50, seed: int = 0, queries: np.ndarray | None = None
) -> float | None:
    """Recall@10 of dense search through the ANN index against exact search.

    Measured on ``queries`` (query vectors) when given, else on perturbed copies of stored
    vectors. Those sit far nearer their neighbours than real queries do, so they flatter the
    index (bench/latency.py prints both). None when the table has no ANN index (every search is
    exact).
    """
    if not has_ann_index(table):
        return None
    if queries is None:
        vectors = fixed_list_to_numpy(table.search().select(["vector"]).limit(sample).to_arrow().column("vector"))
        # A small perturbation (norm ~0.2 for 384 dimensions), so queries are near, not on, stored vectors.
        noise = np.random.default_rng(seed).standard_normal(vectors.shape).astype(np.float32) * 0.01
        queries = vectors + noise
    overlaps = []
    for query in queries:
        exact = {hit.chunk_id for hit in dense_search(table, query, 10, exact=True)}
        approximate = {hit.chunk_id for hit in dense_search(table, query, 10)}
        overlaps.append(len(exact & approximate) / max(1, len(exact)))
    return float(np.mean(overlaps)) if overlaps else None
