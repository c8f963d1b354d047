"""Retrieval evaluation of one embedder's index on one eval set, per search mode.

Each eval query is embedded once per evaluation: dense and hybrid search share its vector, and
so do the table versions scored side by side (the candidate and the served one).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ai_assets.core.evaluation.beir import EvalSet
from ai_assets.core.evaluation.metrics import evaluated_queries, mean_metrics, percentile
from ai_assets.core.retrieval.search import SEARCH_MODES, Searcher, SearchMode, document_ranking
from ai_assets.core.store.tables import source_row_counts

# Documents are ranked from their chunks, so fetch enough chunks to fill the top 100 documents.
CHUNK_DEPTH = 300
DOCUMENT_DEPTH = 100


class RetrievalScore(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    embedder: str
    eval_set: str
    kind: str = "hand-written"  # who made the eval set (EvalSetKind); older records have none
    mode: SearchMode
    queries: int
    ndcg_at_10: float = Field(alias="ndcg@10")
    recall_at_10: float = Field(alias="recall@10")
    recall_at_100: float = Field(alias="recall@100")
    mrr_at_10: float = Field(alias="mrr@10")
    latency_p50_ms: float
    latency_p95_ms: float


@dataclass(frozen=True)
class EncodedQueries:
    """Query vectors by text. ``encode_ms``: each query's encode time, when it was encoded alone
    as a search encodes it; empty when the vectors came in batches (a paid API, through its cache)."""

    vectors: dict[str, np.ndarray]
    encode_ms: dict[str, float] = field(default_factory=dict)

    @property
    def timed(self) -> bool:
        return bool(self.encode_ms) or not self.vectors


def encode_queries(searcher: Searcher, texts: Sequence[str], one_by_one: bool = True) -> EncodedQueries:
    """Every distinct text's vector, once. ``one_by_one``: through the search path's own encode,
    timed (the local model: latency then includes encoding, as a user's query does); else in
    batches (a paid API, whose vectors a cache keeps across runs)."""
    unique = list(dict.fromkeys(texts))
    if not one_by_one:
        return EncodedQueries(vectors=dict(zip(unique, searcher.encode_queries(unique), strict=True)))
    vectors, encode_ms = {}, {}
    for text in unique:
        started = time.perf_counter()
        vectors[text] = searcher.encode_query(text)
        encode_ms[text] = (time.perf_counter() - started) * 1000.0
    return EncodedQueries(vectors=vectors, encode_ms=encode_ms)


def eval_query_texts(eval_set: EvalSet) -> list[str]:
    return [eval_set.queries[query_id] for query_id in evaluated_queries(eval_set.qrels)]


def evaluate_retrieval(
    searcher: Searcher,
    eval_set: EvalSet,
    encoded: EncodedQueries | None = None,
    modes: Sequence[SearchMode] = SEARCH_MODES,
    chunk_depth: int = CHUNK_DEPTH,
) -> list[RetrievalScore]:
    """Score each mode on the eval set. Query vectors come from ``encoded`` (encoded here when not
    given); latency is the search's plus, where timed, the query's encoding."""
    encoded = encoded or encode_queries(searcher, eval_query_texts(eval_set))
    query_ids = evaluated_queries(eval_set.qrels)
    scores = []
    for mode in modes:
        rankings: dict[str, list[str]] = {}
        latencies_ms: list[float] = []
        for query_id in query_ids:
            text = eval_set.queries[query_id]
            started = time.perf_counter()
            hits = searcher.search(
                text, mode=mode, limit=chunk_depth, sources=eval_set.sources or None,
                query_vector=None if mode == "fts" else encoded.vectors[text],
            )
            encode_ms = 0.0 if mode == "fts" else encoded.encode_ms.get(text, 0.0)
            latencies_ms.append((time.perf_counter() - started) * 1000.0 + encode_ms)
            rankings[query_id] = [doc for doc, _ in document_ranking(hits)][:DOCUMENT_DEPTH]
        metrics = mean_metrics(rankings, eval_set.qrels)
        scores.append(
            RetrievalScore.model_validate(
                {
                    "embedder": searcher.embedder.spec.name,
                    "eval_set": eval_set.name,
                    "kind": eval_set.kind,
                    "mode": mode,
                    "queries": len(query_ids),
                    **metrics,
                    "latency_p50_ms": percentile(latencies_ms, 0.5),
                    "latency_p95_ms": percentile(latencies_ms, 0.95),
                }
            )
        )
    return scores


@dataclass
class VersionScores:
    """One evaluation of the candidate version and, beside it, of the version served now."""

    candidate: list[RetrievalScore] = field(default_factory=list)
    served: list[RetrievalScore] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # eval sets the candidate cannot be scored on, and why
    query_encode_timed: bool = True


def evaluate_candidate_and_served(
    candidate: Searcher, served: Searcher | None, eval_sets: Sequence[EvalSet], one_by_one: bool = True
) -> VersionScores:
    """Score ``candidate`` on every eval set whose sources it holds, and ``served`` (when another
    version) on the same sets with the same query vectors, so the two compare like for like.
    A generated set is about a source that exists (the caller passes only those), so a candidate
    that lacks the source is scored, and fails, rather than skipped."""
    result = VersionScores()
    candidate_sources = set(source_row_counts(candidate.table))
    served_sources = set(source_row_counts(served.table)) if served is not None else set()
    for eval_set in eval_sets:
        missing = sorted(set(eval_set.sources) - candidate_sources)
        if missing and not eval_set.kind.startswith("generated"):
            result.skipped.append(f"{eval_set.name} (sources not indexed: {', '.join(missing)})")
            continue
        encoded = encode_queries(candidate, eval_query_texts(eval_set), one_by_one)
        result.query_encode_timed = result.query_encode_timed and encoded.timed
        result.candidate.extend(evaluate_retrieval(candidate, eval_set, encoded))
        if served is not None and set(eval_set.sources) <= served_sources:
            result.served.extend(evaluate_retrieval(served, eval_set, encoded))
    return result
