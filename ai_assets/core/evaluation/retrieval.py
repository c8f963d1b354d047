"""Retrieval evaluation of one embedder's index on one eval set, per search mode."""

from __future__ import annotations

import time
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from ai_assets.core.evaluation.beir import EvalSet
from ai_assets.core.evaluation.metrics import evaluated_queries, mean_metrics, percentile
from ai_assets.core.retrieval.search import SEARCH_MODES, Searcher, SearchMode, document_ranking

# Documents are ranked from their chunks, so fetch enough chunks to fill the top 100 documents.
CHUNK_DEPTH = 300
DOCUMENT_DEPTH = 100


class RetrievalScore(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    embedder: str
    eval_set: str
    mode: SearchMode
    queries: int
    ndcg_at_10: float = Field(alias="ndcg@10")
    recall_at_10: float = Field(alias="recall@10")
    recall_at_100: float = Field(alias="recall@100")
    mrr_at_10: float = Field(alias="mrr@10")
    latency_p50_ms: float
    latency_p95_ms: float


def evaluate_retrieval(
    searcher: Searcher,
    eval_set: EvalSet,
    modes: Sequence[SearchMode] = SEARCH_MODES,
    chunk_depth: int = CHUNK_DEPTH,
) -> list[RetrievalScore]:
    """Score each mode on the eval set; latency includes query encoding."""
    query_ids = evaluated_queries(eval_set.qrels)
    scores = []
    for mode in modes:
        rankings: dict[str, list[str]] = {}
        latencies_ms: list[float] = []
        for query_id in query_ids:
            started = time.perf_counter()
            hits = searcher.search(
                eval_set.queries[query_id], mode=mode, limit=chunk_depth, sources=eval_set.sources or None
            )
            latencies_ms.append((time.perf_counter() - started) * 1000.0)
            rankings[query_id] = [doc for doc, _ in document_ranking(hits)][:DOCUMENT_DEPTH]
        metrics = mean_metrics(rankings, eval_set.qrels)
        scores.append(
            RetrievalScore.model_validate(
                {
                    "embedder": searcher.embedder.spec.name,
                    "eval_set": eval_set.name,
                    "mode": mode,
                    "queries": len(query_ids),
                    **metrics,
                    "latency_p50_ms": percentile(latencies_ms, 0.5),
                    "latency_p95_ms": percentile(latencies_ms, 0.95),
                }
            )
        )
    return scores


def scores_markdown(scores: Sequence[RetrievalScore]) -> str:
    header = (
        "| eval set | mode | queries | nDCG@10 | recall@10 | recall@100 | MRR@10 | p50 ms | p95 ms |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = "".join(
        f"| {s.eval_set} | {s.mode} | {s.queries} | {s.ndcg_at_10:.4f} | {s.recall_at_10:.4f} | "
        f"{s.recall_at_100:.4f} | {s.mrr_at_10:.4f} | {s.latency_p50_ms:.1f} | {s.latency_p95_ms:.1f} |\n"
        for s in scores
    )
    return header + rows
