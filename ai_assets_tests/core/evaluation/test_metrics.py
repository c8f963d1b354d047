"""Ranking metrics: hand-computed cases and cross-checks against trec_eval (graded qrels, ties)."""

from __future__ import annotations

import math
import random

import pytest

from ai_assets.core.evaluation.metrics import (
    mean_metrics,
    mrr_at_k,
    ndcg_at_k,
    percentile,
    rank_by_score,
    recall_at_k,
)

JUDGED = {"d1": 3, "d2": 1, "d3": 0}


@pytest.mark.parametrize(
    ("ranked", "expected"),
    [
        (["d1", "d2"], 1.0),
        (["d2", "d1"], (1 / 1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3))),
        (["d3", "x", "d1"], (3 / 2.0) / (3 + 1 / math.log2(3))),  # d3 judged 0: no gain
        ([], 0.0),
    ],
)
def test_ndcg_uses_linear_graded_gain(ranked: list[str], expected: float) -> None:
    assert ndcg_at_k(ranked, JUDGED, 10) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("ranked", "k", "recall", "mrr"),
    [
        (["d3", "d2", "x", "d1"], 10, 1.0, 0.5),
        (["d3", "d2", "x", "d1"], 3, 0.5, 0.5),
        (["x", "y", "d3"], 10, 0.0, 0.0),
    ],
)
def test_recall_and_mrr(ranked: list[str], k: int, recall: float, mrr: float) -> None:
    assert recall_at_k(ranked, JUDGED, k) == pytest.approx(recall)
    assert mrr_at_k(ranked, JUDGED, k) == pytest.approx(mrr)


def test_queries_without_relevant_documents_are_left_out_and_missing_rankings_score_zero() -> None:
    qrels = {"q1": {"d1": 1}, "q2": {"d9": 0}, "q3": {"d2": 2}}
    metrics = mean_metrics({"q1": ["d1"]}, qrels)  # q3 has no ranking, q2 nothing relevant
    assert metrics["ndcg@10"] == pytest.approx(0.5) and metrics["mrr@10"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no query has a relevant document"):
        mean_metrics({}, {"q": {"d": 0}})


def test_percentile_nearest_rank() -> None:
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.95) == 5.0
    assert percentile([], 0.5) == 0.0


def test_matches_trec_eval_on_random_graded_qrels() -> None:
    import pytrec_eval  # the test extra installs it: a missing pytrec_eval must fail, not skip

    rng = random.Random(11)
    docs = [f"d{i}" for i in range(60)]
    qrels: dict[str, dict[str, int]] = {}
    rankings: dict[str, list[str]] = {}
    for query in range(30):
        judged = {doc: rng.choice([0, 1, 2, 3]) for doc in rng.sample(docs, 8)}
        if query == 0:
            judged = {doc: 0 for doc in judged}  # no relevant document: excluded
        qrels[f"q{query}"] = judged
        rankings[f"q{query}"] = rng.sample(docs, 40)
    ours = mean_metrics(rankings, qrels)

    evaluated = {q: judged for q, judged in qrels.items() if any(grade > 0 for grade in judged.values())}
    assert len(evaluated) < len(qrels)

    def run(depth: int) -> dict[str, dict[str, float]]:
        return {q: {doc: float(depth - rank) for rank, doc in enumerate(rankings[q][:depth])} for q in evaluated}

    # trec_eval's ndcg uses linear gain, as BEIR reports it; recip_rank of the top 10 is MRR@10.
    full = pytrec_eval.RelevanceEvaluator(evaluated, {"ndcg_cut_10", "recall_10", "recall_100"}).evaluate(run(40))
    top10 = pytrec_eval.RelevanceEvaluator(evaluated, {"recip_rank"}).evaluate(run(10))
    for name, theirs in [
        ("ndcg@10", [full[q]["ndcg_cut_10"] for q in evaluated]),
        ("recall@10", [full[q]["recall_10"] for q in evaluated]),
        ("recall@100", [full[q]["recall_100"] for q in evaluated]),
        ("mrr@10", [top10[q]["recip_rank"] for q in evaluated]),
    ]:
        assert ours[name] == pytest.approx(sum(theirs) / len(theirs), abs=1e-9), name


def test_tied_scores_rank_and_score_as_in_trec_eval() -> None:
    import pytrec_eval  # trec_eval itself, which BEIR reports through; the test extra installs it

    rng = random.Random(5)
    docs = [f"d{i:02d}" for i in range(30)]
    qrels = {f"q{query}": {doc: rng.choice([1, 2, 3]) for doc in rng.sample(docs, 6)} for query in range(20)}
    # Scores on a coarse grid: most documents share their score with others.
    runs = {query: {doc: rng.choice([0.1, 0.2, 0.3]) for doc in rng.sample(docs, 25)} for query in qrels}
    theirs = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_10", "recall_10", "recip_rank"}).evaluate(runs)
    for query, run in runs.items():
        ranked = [doc for doc, _ in rank_by_score(run)]
        assert ndcg_at_k(ranked, qrels[query], 10) == pytest.approx(theirs[query]["ndcg_cut_10"], abs=1e-9)
        assert recall_at_k(ranked, qrels[query], 10) == pytest.approx(theirs[query]["recall_10"], abs=1e-9)
        assert mrr_at_k(ranked, qrels[query], len(ranked)) == pytest.approx(theirs[query]["recip_rank"], abs=1e-9)
    # The ties matter: ranked with ties in ascending id order, the scores would differ.
    ascending = {query: [doc for doc, _ in sorted(run.items(), key=lambda pair: (-pair[1], pair[0]))] for query, run in runs.items()}
    assert any(
        ndcg_at_k(ascending[query], qrels[query], 10) != pytest.approx(theirs[query]["ndcg_cut_10"]) for query in runs
    )
