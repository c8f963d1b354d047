"""Dense, full-text and hybrid (reciprocal-rank fusion) search over an embedder's table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from lancedb.query import MatchQuery
from lancedb.table import Table
from pydantic import BaseModel

from ai_assets.core.chunking import ChunkReference
from ai_assets.core.embedders import Embedder
from ai_assets.core.metrics import rank_by_score
from ai_assets.core.store import VECTOR_INDEX, fixed_list_to_numpy, sql_literal

SearchMode = Literal["dense", "fts", "hybrid"]
SEARCH_MODES: tuple[SearchMode, ...] = ("dense", "fts", "hybrid")
RRF_K = 60
# ANN settings, used once search_index has built a vector index (large tables only): 20 of
# the IVF partitions probed and 10x candidates re-ranked by exact distance keep recall@10
# near exact search (search_index measures it) at a fraction of the scan.
ANN_NPROBES = 20
ANN_REFINE_FACTOR = 10
# Each side of a hybrid search contributes at least this many candidates to the fusion.
HYBRID_CANDIDATES = 100

_HIT_COLUMNS = [
    "chunk_id", "source", "doc_key", "doc_path", "doc_title", "doc_content_hash",
    "chunk_index", "text", "run_id",
]


class SearchHit(ChunkReference):
    run_id: str
    score: float


def source_filter(sources: Sequence[str] | None) -> str | None:
    if not sources:
        return None
    return f"source IN ({', '.join(sql_literal(source) for source in sources)})"


def dense_search(
    table: Table, query_vector: np.ndarray, limit: int, where: str | None = None, exact: bool = False
) -> list[SearchHit]:
    """Cosine search, through the ANN index when the table has one (unless ``exact``); score = cosine."""
    query = table.search(query_vector, vector_column_name="vector").distance_type("cosine")
    query = query.bypass_vector_index() if exact else query.nprobes(ANN_NPROBES).refine_factor(ANN_REFINE_FACTOR)
    if where:
        query = query.where(where, prefilter=True)
    rows = query.select([*_HIT_COLUMNS, "_distance"]).limit(limit).to_arrow().to_pylist()
    return [_hit(row, 1.0 - float(row["_distance"])) for row in rows]


def fts_search(table: Table, query_text: str, limit: int, where: str | None = None) -> list[SearchHit]:
    """BM25 over chunk text. The query is matched as words, never parsed as query syntax."""
    if not query_text.strip():
        return []
    query = table.search(MatchQuery(query_text, "text"), query_type="fts")
    if where:
        query = query.where(where, prefilter=True)
    rows = query.select([*_HIT_COLUMNS, "_score"]).limit(limit).to_arrow().to_pylist()
    return [_hit(row, float(row["_score"])) for row in rows]


def _hit(row: dict, score: float) -> SearchHit:
    return SearchHit(**{name: row[name] for name in _HIT_COLUMNS}, score=score)


def fetch_chunk(table: Table, chunk_id: str) -> SearchHit | None:
    """One chunk row by id (score 0: it was not retrieved by a query)."""
    rows = table.search().where(f"chunk_id = {sql_literal(chunk_id)}").select(_HIT_COLUMNS).limit(1).to_arrow()
    return _hit(rows.to_pylist()[0], 0.0) if rows.num_rows else None


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], k: int = RRF_K, weights: Sequence[float] | None = None
) -> list[tuple[str, float]]:
    """Fuse ranked id lists: score(id) = sum of weight / (k + rank), rank starting at 1.

    Ties are broken by the id's best rank in any list, then by the id, so the result is
    deterministic.
    """
    weights = weights if weights is not None else [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError("one weight per ranking is required")
    scores: dict[str, float] = {}
    best_rank: dict[str, int] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
            best_rank[item] = min(best_rank.get(item, rank), rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], best_rank[pair[0]], pair[0]))


def convex_fusion(
    dense: Sequence[tuple[str, float]],
    lexical: Sequence[tuple[str, float]],
    dense_weight: float,
    dense_floor: float = -1.0,
    lexical_floor: float = 0.0,
) -> list[tuple[str, float]]:
    """Convex combination of normalized scores (TM2C2 of Bruch et al., 2023).

    Each list's scores are scaled to [0, 1] between the score's theoretical minimum (cosine
    -1, BM25 0) and the list's best score; an id missing from a list scores 0 there.
    """

    def scaled(scores: Sequence[tuple[str, float]], floor: float) -> dict[str, float]:
        if not scores:
            return {}
        top = max(score for _, score in scores)
        span = top - floor if top > floor else 1.0
        return {item: (score - floor) / span for item, score in scores}

    dense_scaled, lexical_scaled = scaled(dense, dense_floor), scaled(lexical, lexical_floor)
    fused = {
        item: dense_weight * dense_scaled.get(item, 0.0) + (1.0 - dense_weight) * lexical_scaled.get(item, 0.0)
        for item in dense_scaled.keys() | lexical_scaled.keys()
    }
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))


class Fusion(BaseModel):
    """How hybrid search merges the dense and full-text candidate lists."""

    method: Literal["rrf", "convex"] = "rrf"
    dense_weight: float = 0.5  # convex: share of the dense score; rrf: weight of the dense list (lexical 1 - w)
    rrf_k: int = RRF_K

    def fuse(self, dense: Sequence[SearchHit], lexical: Sequence[SearchHit]) -> list[tuple[str, float]]:
        if self.method == "convex":
            return convex_fusion(
                [(hit.chunk_id, hit.score) for hit in dense],
                [(hit.chunk_id, hit.score) for hit in lexical],
                self.dense_weight,
            )
        return reciprocal_rank_fusion(
            [[hit.chunk_id for hit in dense], [hit.chunk_id for hit in lexical]],
            k=self.rrf_k,
            weights=[self.dense_weight * 2, (1.0 - self.dense_weight) * 2],
        )


# Chosen leave-one-set-out with bench/fusion.py: the best hybrid on msmarco's queries is convex
# 0.9 and so is the best on dbpedia's, so each set is scored with a weight its own queries did
# not choose (msmarco 0.7994 vs dense 0.7960; dbpedia 0.5094 vs dense 0.5130). On docs_qa it
# gives 0.9686 (dense 0.9398, fts 0.9521). The README tells how this replaced convex 0.7.
DEFAULT_FUSION = Fusion(method="convex", dense_weight=0.9)


def hybrid_search(
    table: Table,
    query_vector: np.ndarray,
    query_text: str,
    limit: int,
    where: str | None = None,
    fusion: Fusion = DEFAULT_FUSION,
) -> list[SearchHit]:
    candidates = max(limit, HYBRID_CANDIDATES)
    dense = dense_search(table, query_vector, candidates, where)
    lexical = fts_search(table, query_text, candidates, where)
    by_id = {hit.chunk_id: hit for hit in [*lexical, *dense]}
    return [by_id[chunk_id].model_copy(update={"score": score}) for chunk_id, score in fusion.fuse(dense, lexical)[:limit]]


class Searcher:
    """Runs queries of any mode against one embedder's table."""

    def __init__(self, table: Table, embedder: Embedder, fusion: Fusion = DEFAULT_FUSION) -> None:
        self.table = table
        self.embedder = embedder
        self.fusion = fusion

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        # Queries are short; a query longer than the window is cut to its first words
        # rather than refused, since it only steers the search.
        limit = self.embedder.max_text_tokens
        texts = [_clip_words(query, limit, self.embedder) for query in queries]
        return self.embedder.embed(texts)

    def search(
        self,
        query: str,
        mode: SearchMode = "hybrid",
        limit: int = 10,
        sources: Sequence[str] | None = None,
    ) -> list[SearchHit]:
        where = source_filter(sources)
        if mode == "fts":
            return fts_search(self.table, query, limit, where)
        vector = self.encode_queries([query])[0]
        if mode == "dense":
            return dense_search(self.table, vector, limit, where)
        if mode == "hybrid":
            return hybrid_search(self.table, vector, query, limit, where, self.fusion)
        raise ValueError(f"unknown search mode {mode!r}; choose one of {', '.join(SEARCH_MODES)}")


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


def ann_recall_at_10(table: Table, sample: int = 50, seed: int = 0) -> float | None:
    """Recall@10 of the ANN index against exact search, on perturbed copies of stored vectors.

    None when the table has no vector index (every search is exact).
    """
    if VECTOR_INDEX not in {index.name for index in table.list_indices()}:
        return None
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
