"""Ranking metrics with trec_eval's conventions (as BEIR reports them).

- nDCG@k: linear gain (the graded relevance itself), discount log2(rank + 1), ideal DCG from
  every judged-relevant document of the query.
- recall@k: relevant documents in the top k over all relevant documents.
- MRR@k: reciprocal rank of the first relevant document in the top k.
- Ties: equal scores are ranked in descending document id, as trec_eval does.
- A relevance of 0 or less means "judged not relevant". Queries with no relevant document
  are left out of the means (they have no defined recall or nDCG).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

Qrels = Mapping[str, Mapping[str, int]]  # query id -> document id -> graded relevance


def rank_by_score(scores: Mapping[str, float]) -> list[tuple[str, float]]:
    """Highest score first; equal scores in descending id order, as trec_eval (and so BEIR's
    pytrec_eval) ranks ties, so a tied run scores the same here and there."""
    return sorted(scores.items(), key=lambda pair: (pair[1], pair[0]), reverse=True)


def relevant_documents(judgments: Mapping[str, int]) -> dict[str, int]:
    return {doc: grade for doc, grade in judgments.items() if grade > 0}


def ndcg_at_k(ranked: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    relevant = relevant_documents(judgments)
    if not relevant:
        return 0.0
    dcg = sum(relevant.get(doc, 0) / math.log2(rank + 1) for rank, doc in enumerate(ranked[:k], start=1))
    ideal_grades = sorted(relevant.values(), reverse=True)[:k]
    ideal = sum(grade / math.log2(rank + 1) for rank, grade in enumerate(ideal_grades, start=1))
    return dcg / ideal


def recall_at_k(ranked: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    relevant = relevant_documents(judgments)
    if not relevant:
        return 0.0
    return len(set(ranked[:k]) & relevant.keys()) / len(relevant)


def mrr_at_k(ranked: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    relevant = relevant_documents(judgments)
    for rank, doc in enumerate(ranked[:k], start=1):
        if doc in relevant:
            return 1.0 / rank
    return 0.0


METRICS = {
    "ndcg@10": lambda ranked, judged: ndcg_at_k(ranked, judged, 10),
    "recall@10": lambda ranked, judged: recall_at_k(ranked, judged, 10),
    "recall@100": lambda ranked, judged: recall_at_k(ranked, judged, 100),
    "mrr@10": lambda ranked, judged: mrr_at_k(ranked, judged, 10),
}


def evaluated_queries(qrels: Qrels) -> list[str]:
    """Queries that have at least one relevant document, in a stable order."""
    return sorted(query for query, judged in qrels.items() if relevant_documents(judged))


def mean_metrics(rankings: Mapping[str, Sequence[str]], qrels: Qrels) -> dict[str, float]:
    """Mean of every metric over the evaluated queries; a query missing from ``rankings`` scores 0."""
    queries = evaluated_queries(qrels)
    if not queries:
        raise ValueError("no query has a relevant document; nothing to evaluate")
    return {
        name: sum(metric(rankings.get(query, []), qrels[query]) for query in queries) / len(queries)
        for name, metric in METRICS.items()
    }


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction in 0..1); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = max(0, math.ceil(fraction * len(ordered)) - 1)
    return ordered[index]
